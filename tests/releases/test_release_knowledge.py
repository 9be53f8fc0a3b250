"""Per-release knowledge: the committed schema records and migration chain match the releases'
real migrations (sdists from PyPI, migrated by each release's own alembic), and what the chain
says about data-changing migrations between two revisions."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from releases_testing import ALL_RELEASES, OLDER_RELEASES

from lifeboat.letta import migrations
from lifeboat.letta.migration_scan import scan_directory
from lifeboat.letta.revisions import HEAD_0_16_8
from lifeboat.letta.schema_records import record_for_release
from lifeboat.letta.schema_shape import capture_shape
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.letta_env import LETTA_VERSION, ensure_letta_env
from lifeboat.sandbox.postgres import Cluster
from lifeboat.sandbox.release_deployment import MATRIX

HEAD_0_11_7, HEAD_0_14_0, HEAD_0_16_0 = "ddb69be34a72", "b1c2d3e4f5a6", "d0880aae6cee"


@pytest.mark.parametrize("version", ALL_RELEASES)
def test_record_matches_the_release_own_migrations(
    version: str, pg_cluster: Cluster, release_db_factory: Callable[[str, Cluster], LettaDatabase]
) -> None:
    """The record is what that release's ``alembic upgrade head`` produced when its cached
    deployment was built (own venv, own migrations), table for table and detail for detail."""
    database = release_db_factory(version, pg_cluster)
    with psycopg.connect(database.admin_dsn) as conn:
        shape = capture_shape(conn, "letta")
    record = record_for_release(version)
    assert record is not None
    assert shape.revision == record.revision
    assert shape.tables == record.tables
    assert set(shape.foreign_keys) == set(record.foreign_keys)
    assert shape.sequences == record.sequences
    assert shape.details == record.details


@pytest.mark.parametrize("version", ALL_RELEASES)
def test_each_release_chain_is_a_prefix_of_0_16_8(version: str) -> None:
    """Facts of the issue, checked against the sdists: linear chain, head and revision count."""
    expected = {"0.11.7": (HEAD_0_11_7, 117), "0.14.0": (HEAD_0_14_0, 146), "0.16.0": (HEAD_0_16_0, 150)}
    expected[LETTA_VERSION] = (HEAD_0_16_8, 167)
    scanned = scan_directory(ensure_letta_env(version).src / "alembic" / "versions")
    assert (scanned[-1].revision, len(scanned)) == expected[version]
    if version in MATRIX:
        assert MATRIX[version].head == scanned[-1].revision
    assert [m.revision for m in scanned] == [m.revision for m in migrations.chain()[: len(scanned)]]


def test_committed_chain_is_the_0_16_8_scan() -> None:
    scanned = scan_directory(ensure_letta_env(LETTA_VERSION).src / "alembic" / "versions")
    assert [(m.revision, m.down_revision, m.title, m.effects) for m in scanned] == [
        (m.revision, m.down_revision, m.title, m.effects) for m in migrations.chain()
    ]


def test_0_12_runs_migration_is_reported_as_dropping_data() -> None:
    changes = {m.revision: m for m in migrations.data_changes(HEAD_0_11_7, HEAD_0_16_8)}
    runs = changes["567e9fe06270"]
    assert set(runs.drops) == {
        "drop_table agents_runs",
        "drop_table job_messages",
        "drop_column steps.job_id",
        "drop_column step_metrics.job_id",
    }
    assert runs.release == "0.12.0"
    assert "without copying" in runs.describe()
    assert {"d06594144ef3", "eff256d296cb", "8149a781ac1b"} <= {
        m.revision for m in changes.values() if m.needs_encryption_key
    }
    # From 0.14.0 on, the only data change on the way to 0.16.8 is a backfill of agents.hidden.
    assert [m.revision for m in migrations.data_changes(HEAD_0_14_0, HEAD_0_16_8)] == ["9fa274fb0b83"]


def test_paths_refuse_downgrades_and_unknown_revisions() -> None:
    assert len(migrations.path(HEAD_0_14_0, HEAD_0_16_8)) == 167 - 146
    assert migrations.path(HEAD_0_16_8, HEAD_0_16_8) == []
    with pytest.raises(migrations.MigrationPathError, match="downgrades are refused"):
        migrations.path(HEAD_0_16_8, HEAD_0_14_0)
    with pytest.raises(migrations.MigrationPathError, match="not in Letta"):
        migrations.path("0123456789ab", HEAD_0_16_8)
    assert migrations.resolve_target("head") == HEAD_0_16_8
    assert migrations.resolve_target("0.15.1") == HEAD_0_14_0
    assert migrations.resolve_target("0.16.8") == HEAD_0_16_8


@pytest.mark.parametrize("version", OLDER_RELEASES)
def test_release_deployment_contents(version: str, release_db_factory, pg_cluster: Cluster) -> None:
    """Each cached release deployment holds what the issue asks for, made by its own server."""
    db = release_db_factory(version, pg_cluster)
    facts = db.facts
    assert facts["letta_version"] == version
    assert facts["alembic_revision"] == MATRIX[version].head
    counts = facts["counts"]
    assert counts["agents"] == 4  # three main agents + the sleeptime sibling
    assert counts["archival_passages"] == 6 and counts["files"] == 1 and counts["messages"] > 20
    assert facts["sleeptime"] is not None and counts["groups"] == 1
    shared = [
        len(v["blocks"]) for v in facts["api_view"].values() if facts["shared_block_id"] in str(v["blocks"])
    ]
    assert len(shared) >= 3
