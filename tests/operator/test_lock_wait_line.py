"""A backup that waits for a table lock says so, naming the table and the session holding it."""

from __future__ import annotations

import threading
import uuid

import psycopg
from operator_testing import make_small_db

from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository


def test_backup_names_the_lock_it_waits_for(pg_cluster, repo: Repository) -> None:
    dsn = make_small_db(pg_cluster, f"lockwait_{uuid.uuid4().hex[:8]}", agents=5)
    heard: list[str] = []
    waiting = threading.Event()
    outcome: list[object] = []

    def on_lock_wait(line: str) -> None:
        heard.append(line)
        waiting.set()

    blocker = psycopg.connect(dsn)
    blocker.execute("LOCK TABLE letta.messages IN ACCESS EXCLUSIVE MODE")
    blocker_pid = blocker.info.backend_pid

    def backup() -> None:
        try:
            outcome.append(run_backup(repo, dsn, jobs=1, on_lock_wait=on_lock_wait))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=backup)
    thread.start()
    try:
        assert waiting.wait(timeout=120), "the wait was never reported"
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(timeout=300)
    assert heard[0].startswith(f"waiting for a lock on letta.messages held by pid {blocker_pid}")
    assert "LOCK TABLE letta.messages" in heard[0]
    assert len(heard) == 1  # once per wait, not once per poll
    [result] = outcome
    assert not isinstance(result, BaseException), result
    assert repo.snapshot_ids()  # the backup finished once the lock was released
