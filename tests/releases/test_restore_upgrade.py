"""Issue 14, must-show 2: ``restore --upgrade`` of every older release's snapshot; the real 0.16.8
server on the result shows what the old release's server showed and answers a message. Plus:
downgrades are refused and a failing migration leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ops_testing import cli, new_repo, scalar
from releases_testing import OLDER_RELEASES, comparable_view

from lifeboat.errors import DatabaseError, UnsafeRestore
from lifeboat.letta.checks import Severity
from lifeboat.letta.revisions import HEAD_0_16_8
from lifeboat.letta.schema_records import schema_record
from lifeboat.letta.schema_shape import capture_shape
from lifeboat.ops.backup import run_backup
from lifeboat.ops.doctor import DoctorCheck, DoctorInputs, run_doctor
from lifeboat.ops.restore import Trust
from lifeboat.ops.upgrade import UpgradePlan, run_upgrade_restore
from lifeboat.ops.verify import verify_database
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.letta_schema import LETTA_PASSWORD, LETTA_ROLE
from lifeboat.sandbox.postgres import Cluster
from lifeboat.sandbox.release_populate import api_view

Loader = Callable[[str, Cluster], LettaDatabase]


def _upgrade(repo: Repository, source: LettaDatabase, cluster: Cluster, target: str, **kw: Any):
    snapshot = run_backup(repo, source.admin_dsn).snapshot
    announced: list[UpgradePlan] = []
    result = run_upgrade_restore(repo, snapshot.id, cluster.dsn(target), announce=announced.append, **kw)
    return result, announced


@pytest.mark.parametrize("version", OLDER_RELEASES)
def test_upgrade_restore_reaches_0_16_8(
    version: str, pg_cluster: Cluster, repo: Repository, release_db_factory: Loader
) -> None:
    source = release_db_factory(version, pg_cluster)
    target = f"{source.dbname}_up"
    result, announced = _upgrade(repo, source, pg_cluster, target)
    dsn = pg_cluster.dsn(target)
    try:
        assert [p.to_revision for p in announced] == [HEAD_0_16_8]
        assert len(result.ran) == len(announced[0].steps) > 0
        report = verify_database(dsn)
        assert report.revision == HEAD_0_16_8
        assert report.errors() == [], [f.message for f in report.errors()]
        assert "schema.revision_other" not in report.codes(Severity.INFO)
        with psycopg.connect(dsn) as conn:
            shape = capture_shape(conn, "letta")
        record = schema_record(HEAD_0_16_8)
        assert record is not None and shape.tables == record.tables
        # Everything Letta's migrations created belongs to the database's owner, as in production.
        owners = scalar(
            dsn, "SELECT array_agg(DISTINCT pg_get_userbyid(relowner)) FROM pg_class "
            "WHERE relnamespace = 'letta'::regnamespace"
        )  # fmt: skip
        assert owners == [LETTA_ROLE]
        for table in ("agents", "block", "archival_passages", "files", "groups"):
            assert scalar(dsn, f"SELECT count(*) FROM letta.{table}") == source.facts["counts"][table]
        leftovers = [d for d in pg_cluster.list_databases() if d.startswith(f"{target}") and d != target]
        assert leftovers == []
        if version == "0.11.7":  # 567e9fe06270 was announced with what it drops
            text = "\n".join(announced[0].lines())
            assert "567e9fe06270" in text and "job_messages" in text and "without copying" in text
    finally:
        pg_cluster.drop_database(target)


@pytest.mark.letta_server
@pytest.mark.parametrize("version", OLDER_RELEASES)
def test_0_16_8_server_on_upgraded_snapshot(
    version: str, pg_cluster: Cluster, repo: Repository, release_db_factory: Loader, letta_server
) -> None:
    source = release_db_factory(version, pg_cluster)
    target = f"{source.dbname}_srv"
    _upgrade(repo, source, pg_cluster, target)
    try:
        server = letta_server(pg_cluster.dsn(target, LETTA_ROLE, LETTA_PASSWORD))
        after = api_view(server)
        assert comparable_view(after) == comparable_view(source.facts["api_view"])
        agent_id = source.facts["agent_ids"]["rl-agent-1"]
        reply = server.post(
            f"/v1/agents/{agent_id}/messages",
            {"messages": [{"role": "user", "content": "hello from the upgraded database"}]},
        )
        assert any("hello from the upgraded database" in str(m) for m in reply["messages"]), reply
        # doctor: the running 0.16.8 server agrees with the upgraded schema, not with the old one.
        upgraded = _doctor(pg_cluster.dsn(target), server.base_url)
        assert (
            upgraded["letta.server"].status.value == "ok"
            and upgraded["letta.server"].details["version"] == "0.16.8"
        )
        old = _doctor(source.admin_dsn, server.base_url)
        assert old["letta.revision"].details["upgrade_available"] is True
        assert old["letta.server"].status.value == "warn", old["letta.server"].message
        assert version in old["letta.server"].details["schema_release"] or version == "0.16.0"
        server.stop()
    finally:
        pg_cluster.drop_database(target)


def test_downgrade_and_unknown_targets_are_refused(
    pg_cluster: Cluster, repo: Repository, release_db_factory: Loader
) -> None:
    source = release_db_factory("0.16.0", pg_cluster)
    snapshot = run_backup(repo, source.admin_dsn).snapshot
    before = set(pg_cluster.list_databases())
    with pytest.raises(UnsafeRestore, match="downgrades are refused"):
        run_upgrade_restore(repo, snapshot.id, pg_cluster.dsn("never_created"), "0.14.0")
    with pytest.raises(UnsafeRestore, match="not in Letta's migrations"):
        run_upgrade_restore(repo, snapshot.id, pg_cluster.dsn("never_created"), "0123456789ab")
    assert set(pg_cluster.list_databases()) == before


def test_failing_migration_leaves_nothing_behind(
    pg_cluster: Cluster, repo: Repository, release_db_factory: Loader
) -> None:
    """A table in the way of 0.16's conversations migration makes it fail: the error names the
    migration, the target does not exist, and no temporary database is left."""
    source = release_db_factory("0.14.0", pg_cluster)
    with psycopg.connect(source.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE letta.conversations (id text PRIMARY KEY)")
    before = set(pg_cluster.list_databases())
    with pytest.raises(DatabaseError, match=r"failed in migration \w+ \(.*onversation") as caught:
        # the extra table is a difference from 0.14.0's record: trusted here to reach the migration
        _upgrade(repo, source, pg_cluster, "upgrade_fails", trust=Trust(schema=True))
    assert "letta:letta@" not in str(caught.value) and LETTA_PASSWORD + "@" not in str(caught.value)
    assert set(pg_cluster.list_databases()) == before


def test_cli_restore_upgrade(pg_cluster: Cluster, release_db_factory: Loader, tmp_path: Path) -> None:
    """The command line: the plan on stderr first, JSON on stdout, exit 5 for a downgrade."""
    source = release_db_factory("0.11.7", pg_cluster)
    repo_dir = tmp_path / "repo"
    snapshot = run_backup(new_repo(repo_dir), source.admin_dsn).snapshot
    target = f"{source.dbname}_cli"
    done = cli(
        "--json", "restore", snapshot.id, "--repo", str(repo_dir),
        "--target", pg_cluster.dsn(target), "--upgrade", "head",
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr
        assert "567e9fe06270" in done.stderr and "job_messages" in done.stderr
        summary = json.loads(done.stdout)
        assert summary["upgrade"]["to_revision"] == HEAD_0_16_8
        assert summary["upgrade"]["ran"] == summary["upgrade"]["migrations"] == 50
        runs = next(c for c in summary["upgrade"]["data_changes"] if c["revision"] == "567e9fe06270")
        # job_messages (4 rows), steps and step_metrics (6 each) lose data or links in this snapshot
        assert runs["rows_at_stake"] == 16
        assert "(16 row(s) of this snapshot affected)" in done.stderr
        assert scalar(pg_cluster.dsn(target), "SELECT version_num FROM letta.alembic_version") == HEAD_0_16_8
    finally:
        pg_cluster.drop_database(target)
    refused = cli(
        "restore", snapshot.id, "--repo", str(repo_dir), "--target", pg_cluster.dsn("never_created"),
        "--upgrade", "0.10.0",
    )  # fmt: skip
    assert refused.returncode == 5 and "downgrades are refused" in refused.stderr, refused.stderr
    assert "never_created" not in pg_cluster.list_databases()


def _doctor(dsn: str, server_url: str | None) -> dict[str, DoctorCheck]:
    report = run_doctor(DoctorInputs(dsn=dsn, repository=None, server_url=server_url))
    return {check.name: check for check in report.checks}


def test_doctor_names_the_release_and_the_way_up(pg_cluster: Cluster, release_db_factory: Loader) -> None:
    source = release_db_factory("0.14.0", pg_cluster)
    checks = _doctor(source.admin_dsn, "http://127.0.0.1:9")  # nothing listens on the discard port
    revision = checks["letta.revision"]
    assert revision.status.value == "ok" and revision.details["release"] == "0.14.0–0.15.1"
    assert revision.details["schema_record"] is True and revision.details["upgrade_available"] is True
    assert "drill --upgrade-to 0.16.8" in revision.message
    assert checks["letta.server"].status.value == "skip"
    assert _doctor(source.admin_dsn, None)["letta.server"].status.value == "skip"


def test_encryption_key_reaches_the_migrations(
    pg_cluster: Cluster, repo: Repository, release_db_factory: Loader
) -> None:
    """0.13.0's 8149a781ac1b encrypts sandbox secrets into value_enc only with LETTA_ENCRYPTION_KEY:
    with the key given, the upgraded row carries a ciphertext that verify decrypts; without, none."""
    source = release_db_factory("0.11.7", pg_cluster)
    with psycopg.connect(source.admin_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sandbox_environment_variables (id, key, value, organization_id, sandbox_config_id) "
            "SELECT 'sandbox-env-2f0c3c52-4b7e-4d55-9a43-1f0e6c3b9d01', 'LB_TOKEN', 'lb-plain-secret-42', "
            "organization_id, id FROM sandbox_configs LIMIT 1"
        )
    key = "lifeboat-test-encryption-key-0001"
    snapshot = run_backup(repo, source.admin_dsn).snapshot
    with_key, without_key = f"{source.dbname}_key", f"{source.dbname}_nokey"
    try:
        run_upgrade_restore(repo, snapshot.id, pg_cluster.dsn(with_key), "head", encryption_key=key)
        run_upgrade_restore(repo, snapshot.id, pg_cluster.dsn(without_key), "head")
        query = "SELECT value_enc FROM letta.sandbox_environment_variables WHERE key = 'LB_TOKEN'"
        encrypted = scalar(pg_cluster.dsn(with_key), query)
        assert encrypted and "lb-plain-secret-42" not in encrypted and key not in encrypted
        assert scalar(pg_cluster.dsn(without_key), query) is None
        report = verify_database(pg_cluster.dsn(with_key), encryption_key=key)
        assert report.errors() == [], [f.message for f in report.errors()]
    finally:
        pg_cluster.drop_database(with_key)
        pg_cluster.drop_database(without_key)
