"""verify on the real Letta deployment: clean as built; every injected defect found, and only it."""

from __future__ import annotations

import psycopg
import pytest

from lifeboat.letta.checks import Severity
from lifeboat.letta.schema_compare import compare_shapes
from lifeboat.letta.schema_shape import capture_shape, expected_shape
from lifeboat.ops.verify import verify_database
from lifeboat.sandbox.deployment import LettaDatabase
from tests.verify.zoo import DEFECTS, Defect


def test_clean_deployment_has_no_errors(letta_db: LettaDatabase) -> None:
    report = verify_database(letta_db.dsn)
    assert report.ok, [f.model_dump() for f in report.errors()]
    assert report.revision == "1c28e167b74f"
    assert report.release == "0.16.7–0.16.8"
    assert all(check.status.value in ("ok", "found") for check in report.checks)
    # the deployment's crash leftovers are reported, as warnings
    assert report.codes(Severity.WARNING) == {"runs.in_flight", "steps.pending"}


def test_recorded_schema_shape_matches_the_real_deployment(letta_db: LettaDatabase) -> None:
    with psycopg.connect(letta_db.admin_dsn) as conn:
        actual = capture_shape(conn, "letta")
    recorded = expected_shape(actual.revision)
    assert recorded is not None
    assert actual.tables == recorded.tables
    assert set(actual.foreign_keys) == set(recorded.foreign_keys)
    assert actual.sequences == recorded.sequences
    assert actual.details == recorded.details
    assert compare_shapes(recorded, actual) == []


def test_the_zoo_is_big_enough() -> None:
    assert len({defect.code for defect in DEFECTS}) >= 15


# What the clean deployment itself reports: its deliberate crash leftovers, and secrets not
# checked without a key.
BASELINE = {"runs.in_flight", "steps.pending", "secrets.skipped"}


@pytest.mark.parametrize("defect", DEFECTS, ids=str)
def test_defect_is_found_by_its_check_and_nothing_else(letta_db: LettaDatabase, defect: Defect) -> None:
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        expected_ids = defect.inject(conn, letta_db.facts)

    report = verify_database(letta_db.dsn, encryption_key=defect.encryption_key)

    new = [f for f in report.findings if f.check not in BASELINE]
    assert sorted(f.check for f in new) == sorted([defect.code, *defect.also]), [f.model_dump() for f in new]
    found = next(f for f in new if f.check == defect.code)
    assert found.table == defect.table
    assert sorted(found.ids) == sorted(expected_ids)
    assert found.count == len(expected_ids) or (not expected_ids and found.count == 0)
    assert report.ok is (found.severity is not Severity.ERROR and not report.errors())
