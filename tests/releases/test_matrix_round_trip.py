"""Issue 14, must-show 1: for every release of the matrix, backup of its deployment → full restore
→ verify clean against that release's schema record → identical per-table hashes."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from ops_testing import table_digests
from releases_testing import ALL_RELEASES

from lifeboat.letta import revisions
from lifeboat.letta.checks import Severity
from lifeboat.letta.schema_records import record_for_release, schema_record
from lifeboat.letta.schema_shape import capture_shape
from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.ops.verify import verify_database
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import Cluster


@pytest.mark.parametrize("version", ALL_RELEASES)
def test_backup_restore_verify_per_release(
    version: str,
    pg_cluster: Cluster,
    repo: Repository,
    release_db_factory: Callable[[str, Cluster], LettaDatabase],
) -> None:
    source = release_db_factory(version, pg_cluster)
    record = record_for_release(version)
    assert record is not None and record.revision == source.facts["alembic_revision"]

    result = run_backup(repo, source.admin_dsn, tags=[f"letta-{version}"])
    assert result.snapshot.documents["source"]["letta_revision"] == record.revision
    letta = result.snapshot.documents["letta"]
    assert "warning" not in letta, letta.get("warning")  # the agent catalog reads this revision's tables
    catalog = {entry["id"]: entry for entry in letta["agents"]}
    assert set(catalog) == {agent["id"] for agent in source.facts["agents"]}
    if version != "0.16.8":
        assert catalog[source.facts["agent_ids"]["rl-agent-0"]]["last_run_status"] == "completed"

    target = f"{source.dbname}_restored"
    run_restore(repo, result.snapshot.id, pg_cluster.dsn(target))
    target_dsn = pg_cluster.dsn(target)
    try:
        report = verify_database(target_dsn)
        assert report.revision == record.revision
        assert version in revisions.releases_for(report.revision)
        assert report.errors() == [], [f.message for f in report.errors()]
        # The comparison with the record really ran (it is skipped for revisions without one).
        assert "schema.revision_other" not in report.codes(Severity.INFO)
        with psycopg.connect(target_dsn) as conn:
            restored = capture_shape(conn, "letta")
        assert restored.tables == record.tables
        assert set(restored.foreign_keys) == set(record.foreign_keys)
        assert restored.sequences == record.sequences

        assert table_digests(target_dsn) == table_digests(source.admin_dsn)
    finally:
        pg_cluster.drop_database(target)


def test_every_matrix_release_has_a_record() -> None:
    for version in ALL_RELEASES:
        shape = record_for_release(version)
        assert shape is not None, version
        assert schema_record(shape.revision) is shape
