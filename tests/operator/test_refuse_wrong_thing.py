"""Issue 12 item 5: refuse the wrong thing — a backup of a database without Letta's schema, a
forced restore over another deployment; and say which sessions a forced restore ends."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from operator_testing import PASSPHRASE, cli, make_small_db

from lifeboat.letta.deployment_identity import DeploymentOnTarget, difference
from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import Cluster


def _plain_database(cluster: Cluster, name: str) -> str:
    cluster.create_database(name)
    dsn = cluster.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer PRIMARY KEY, total numeric)")
        conn.execute("INSERT INTO invoices SELECT n, n * 1.5 FROM generate_series(1, 100) n")
    return dsn


def test_backup_of_a_database_without_letta_schema_is_refused(pg_cluster: Cluster, repo: Repository) -> None:
    dsn = _plain_database(pg_cluster, "not_letta_backup")
    try:
        refused = cli("backup", "--repo", repo.backend.url, "--db", dsn)
        assert refused.returncode == 4, refused.stderr
        assert "database not_letta_backup has no Letta schema" in refused.stderr
        assert "--any-database" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
        assert Repository.open(repo.backend.url, PASSPHRASE).snapshot_ids() == []  # nothing became latest

        done = cli("--json", "backup", "--repo", repo.backend.url, "--db", dsn, "--any-database")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["tables"] == 1
    finally:
        pg_cluster.drop_database("not_letta_backup")


def test_forced_restore_over_another_deployment_is_refused_and_changes_nothing(
    letta_db: LettaDatabase, repo: Repository
) -> None:
    cluster = letta_db.cluster
    snapshot = run_backup(repo, letta_db.admin_dsn).snapshot
    other = make_small_db(cluster, "other_deployment")  # Letta-shaped, none of the snapshot's agents
    plain = _plain_database(cluster, "no_deployment")
    before = set(cluster.list_databases())
    try:
        for dsn, why in ((other, "a different Letta deployment"), (plain, "no Letta deployment")):
            refused = cli(
                "restore",
                snapshot.id,
                "--repo",
                repo.backend.url,
                "--target",
                dsn,
                "--force",
                "--trust-schema",
            )
            assert refused.returncode == 5, refused.stderr
            assert why in refused.stderr and "--other-deployment" in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1
        assert set(cluster.list_databases()) == before  # no temporary database, nothing replaced
        with psycopg.connect(other) as conn:
            assert conn.execute("SELECT count(*) FROM letta.agents").fetchone() == (30,)
        assert len(Repository.open(repo.backend.url, PASSPHRASE).snapshot_ids()) == 1  # no safety snapshot
    finally:
        cluster.drop_database("other_deployment")
        cluster.drop_database("no_deployment")


def test_forced_restore_says_which_sessions_it_ends(letta_db: LettaDatabase, repo: Repository) -> None:
    snapshot = run_backup(repo, letta_db.admin_dsn).snapshot
    server = psycopg.connect(letta_db.dsn, autocommit=True, application_name="letta-server-stand-in")
    pid = server.info.backend_pid
    try:
        done = cli(
            "restore", snapshot.id, "--repo", repo.backend.url, "--target", letta_db.admin_dsn, "--force"
        )
        assert done.returncode == 0, done.stderr
        said = " ".join(done.stderr.split())  # rich wraps long lines on stderr
        # (exact text, but not the count: another session may come and go on a shared test cluster)
        announce, ending = (
            re.search(rf"{prefix} \d+ session\(s\) on database {letta_db.dbname}: (.*?)(?= ending |$)", said)
            for prefix in ("the switch will end", "ending")
        )
        assert announce and f"pid {pid} (letta@127.0.0.1 'letta-server-stand-in', idle)" in announce.group(1)
        assert ending and f"pid {pid} (letta@127.0.0.1 'letta-server-stand-in'" in ending.group(1)
        with pytest.raises(psycopg.OperationalError):
            server.execute("SELECT 1")  # it really was ended
    finally:
        server.close()


def test_deployment_difference_rules() -> None:
    same = frozenset({"agent-1", "agent-2"})
    assert difference(same, DeploymentOnTarget(frozenset({"agent-2", "agent-3"}))) is None  # later state
    assert "different Letta deployment" in str(difference(same, DeploymentOnTarget(frozenset({"agent-9"}))))
    assert "no Letta deployment" in str(difference(same, DeploymentOnTarget(None)))
    assert "another database" in str(difference(None, DeploymentOnTarget(frozenset())))
    assert difference(frozenset(), DeploymentOnTarget(frozenset({"agent-9"}))) is None  # nothing to compare
    assert difference(None, DeploymentOnTarget(None)) is None


def test_restore_summary_always_has_sessions_ended() -> None:
    """docs/JSON.md documents ``sessions_ended``; the key is always present (empty for a new database)."""
    from lifeboat.ops.restore import RestoreResult
    from lifeboat.repo.manifest import Snapshot

    result = RestoreResult(snapshot=Snapshot(), database="d", dsn="", seconds=0.0)
    assert result.summary()["sessions_ended"] == []
