"""SIGINT and SIGTERM mid-work: exit 130/143 after the same cleanup as an error, and a later run works.

The real CLI runs in a subprocess against real PostgreSQL and the real Letta deployment. Each
case waits until PostgreSQL shows the command at a known point — blocked on a lock the test
holds, or copying a 25 MB ballast table — then signals it, and checks what is left: no
temporary database, no repository lock, no half-written repository file, the live database
unchanged; then the same command runs to completion.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dbcompare import table_digests
from support import PASSPHRASE, cli, new_repo, start_cli

from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase, load_deployment
from lifeboat.sandbox.postgres import Cluster

SIGNALS = [pytest.param(signal.SIGINT, 130, id="SIGINT"), pytest.param(signal.SIGTERM, 143, id="SIGTERM")]
BALLAST_ROWS = 200_000  # ~25 MB: a COPY that lasts long enough to be caught in the middle


@pytest.fixture(scope="module")
def source(pg_cluster: Cluster) -> Iterator[LettaDatabase]:
    """The Letta deployment plus a ballast table in its own schema, and one snapshot of it."""
    database = load_deployment(pg_cluster, "interrupts_source")
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA ballast AUTHORIZATION letta")
        conn.execute("CREATE TABLE ballast.rows (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute(
            "INSERT INTO ballast.rows SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, %s) i",
            (BALLAST_ROWS,),
        )
        conn.execute("ALTER TABLE ballast.rows OWNER TO letta")
    yield database
    database.drop()


@pytest.fixture
def repo_dir(tmp_path: Path, source: LettaDatabase) -> Path:
    repo = new_repo(tmp_path / "repo")
    run_backup(repo, source.admin_dsn)
    return tmp_path / "repo"


class Blocker:
    """A connection of the test holding a lock inside an open transaction until ``release``."""

    def __init__(self, dsn: str, *statements: tuple[str, Any]) -> None:
        self.conn = psycopg.connect(dsn)
        for statement, params in statements:
            self.conn.execute(statement, params)

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _lifeboat_sessions(cluster: Cluster) -> list[tuple[str, str, str | None, str]]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        return conn.execute(
            "SELECT datname, state, wait_event_type, query FROM pg_stat_activity "
            "WHERE application_name = 'lifeboat'"
        ).fetchall()


def blocked_on_lock(cluster: Cluster) -> bool:
    return any(wait == "Lock" for _db, _state, wait, _query in _lifeboat_sessions(cluster))


def copying_ballast(cluster: Cluster) -> bool:
    return any(
        state == "active" and query.startswith("COPY") and "ballast" in query
        for _db, state, _wait, query in _lifeboat_sessions(cluster)
    )


def interrupt_when(
    process: subprocess.Popen[str], ready: Callable[[], bool], sig: signal.Signals
) -> tuple[int, str]:
    """Signal ``process`` as soon as ``ready()``; its exit code and stderr."""
    deadline = time.monotonic() + 120
    while not ready():
        assert process.poll() is None, f"finished before the point was reached: {process.communicate()}"
        assert time.monotonic() < deadline, "the point was never reached"
        time.sleep(0.01)
    process.send_signal(sig)
    _out, err = process.communicate(timeout=120)
    return process.returncode, err


FORCE_ANNOUNCEMENTS = ("the switch will end ", "no session is connected to database ")


def assert_clean(cluster: Cluster, repo_dir: Path, err: str, code: int, expected: int) -> None:
    assert code == expected, err
    assert "Traceback" not in err
    name = "SIGINT" if expected == 130 else "SIGTERM"
    # restore --force first announces the sessions the switch will end (one line, before the fact)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(FORCE_ANNOUNCEMENTS)]
    assert len(lines) == 1 and f"interrupted by {name}" in lines[0] and "rolled back:" in lines[0], err
    assert not [db for db in cluster.list_databases() if "_lifeboat_" in db]
    assert not list((repo_dir / "locks").iterdir())
    assert not [p for p in repo_dir.rglob("*") if p.name.endswith(".tmp")]
    repo = Repository.open(repo_dir, PASSPHRASE)
    assert repo.check(read_data=True).ok


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
@pytest.mark.parametrize("point", ["waiting for a table lock", "copying the ballast table"])
def test_backup(
    source: LettaDatabase, repo_dir: Path, sig: signal.Signals, expected: int, point: str
) -> None:
    args = ("backup", "--repo", str(repo_dir), "--db", source.admin_dsn, "--jobs", "1")
    if point.startswith("copying"):  # unchanged since the last snapshot, an incremental would keep it
        args += ("--full",)
    snapshots = len(Repository.open(repo_dir, PASSPHRASE).list_snapshots())
    blocker = None
    if point.startswith("waiting"):
        blocker = Blocker(source.admin_dsn, ("LOCK TABLE letta.runs IN ACCESS EXCLUSIVE MODE", None))
        code, err = interrupt_when(start_cli(*args), lambda: blocked_on_lock(source.cluster), sig)
        blocker.release()
    else:
        code, err = interrupt_when(start_cli(*args), lambda: copying_ballast(source.cluster), sig)
    assert_clean(source.cluster, repo_dir, err, code, expected)
    assert "repository lock" in err
    assert len(Repository.open(repo_dir, PASSPHRASE).list_snapshots()) == snapshots  # none saved
    again = cli(*args)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
@pytest.mark.parametrize("point", ["loading the ballast table", "taking the safety snapshot"])
def test_full_restore(
    source: LettaDatabase, repo_dir: Path, sig: signal.Signals, expected: int, point: str
) -> None:
    cluster = source.cluster
    target = f"interrupted_{sig.name.lower()}_{point.split()[0]}"
    # --trust-schema: the ballast schema is not in the record of Letta's revision
    args = ("restore", "latest", "--repo", str(repo_dir), "--target", cluster.dsn(target), "--trust-schema")
    if point.startswith("loading"):
        code, err = interrupt_when(start_cli(*args), lambda: copying_ballast(cluster), sig)
        assert target not in cluster.list_databases()
    else:
        first = cli(*args)
        assert first.returncode == 0, first.stderr
        before = table_digests(cluster.dsn(target))
        blocker = Blocker(cluster.dsn(target), ("LOCK TABLE ballast.rows IN ACCESS EXCLUSIVE MODE", None))
        args = (*args, "--force")
        code, err = interrupt_when(start_cli(*args), lambda: blocked_on_lock(cluster), sig)
        blocker.release()
        assert table_digests(cluster.dsn(target)) == before  # the existing target is untouched
    assert_clean(cluster, repo_dir, err, code, expected)
    assert "temporary database" in err and "dropped" in err
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert table_digests(cluster.dsn(target)) == table_digests(source.admin_dsn)
    cluster.drop_database(target)


@pytest.mark.parametrize(("sig", "expected"), SIGNALS)
@pytest.mark.parametrize("point", ["locking the agent's row", "writing messages"])
def test_agent_restore(
    source: LettaDatabase, repo_dir: Path, sig: signal.Signals, expected: int, point: str
) -> None:
    agent_id = source.facts["agent_ids"]["lb-agent-04"]
    with psycopg.connect(source.admin_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM letta.messages WHERE agent_id = %s", (agent_id,))
    before = table_digests(source.admin_dsn)
    if point.startswith("locking"):
        lock = ("SELECT 1 FROM letta.agents WHERE id = %s FOR UPDATE", (agent_id,))
    else:
        lock = ("LOCK TABLE letta.messages IN SHARE MODE", None)  # reads go on, writes wait
    blocker = Blocker(source.admin_dsn, lock)
    args = ("restore", "--agent", agent_id, "--repo", str(repo_dir), "--db", source.dsn, "--force")
    code, err = interrupt_when(start_cli(*args), lambda: blocked_on_lock(source.cluster), sig)
    blocker.release()
    assert_clean(source.cluster, repo_dir, err, code, expected)
    assert "transaction" in err
    assert table_digests(source.admin_dsn) == before  # nothing of the restore was committed
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    with psycopg.connect(source.admin_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM letta.messages WHERE agent_id = %s", (agent_id,)).fetchone()
    assert row is not None and row[0] > 0
