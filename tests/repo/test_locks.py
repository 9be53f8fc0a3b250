"""Locks: shared vs exclusive conflicts, refresh, stale detection, unlock."""

from __future__ import annotations

import multiprocessing
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from repo_testing import PASSPHRASE

from lifeboat.errors import RepositoryLocked
from lifeboat.repo import Repository
from lifeboat.repo.locks import LockInfo, LockStore, RepositoryLock


def test_shared_locks_coexist(repo: Repository) -> None:
    with repo.lock(), repo.lock():
        assert len(repo.list_locks()) == 2
    assert repo.list_locks() == []


def test_exclusive_conflicts_with_shared_and_vice_versa(repo: Repository, repo_path: Path) -> None:
    other = Repository.open(repo_path, PASSPHRASE)
    with repo.lock(), pytest.raises(RepositoryLocked, match=r"shared lock .* held by pid"):
        other.lock(exclusive=True)
    with repo.lock(exclusive=True):
        with pytest.raises(RepositoryLocked, match="exclusive lock"):
            other.lock()
        with pytest.raises(RepositoryLocked):
            other.lock(exclusive=True)
    assert repo.list_locks() == []  # the refused attempts left nothing behind
    with other.lock(exclusive=True):
        pass


def test_lock_is_refreshed_while_held(repo: Repository) -> None:
    lock = RepositoryLock(repo.locks, exclusive=False, refresh_interval=timedelta(seconds=0.05)).acquire()
    try:
        first = repo.list_locks()[0].time
        time.sleep(0.3)
        assert repo.list_locks()[0].time > first
    finally:
        lock.release()


def _hold_and_die(repo_path: str) -> None:
    import os
    import signal

    Repository.open(repo_path, PASSPHRASE).lock(exclusive=True)
    os.kill(os.getpid(), signal.SIGKILL)


def test_lock_of_dead_process_on_this_host_is_stale(repo: Repository, repo_path: Path) -> None:
    process = multiprocessing.get_context("fork").Process(target=_hold_and_die, args=(str(repo_path),))
    process.start()
    process.join(30)
    (dead,) = repo.list_locks()
    assert dead.exclusive and dead.pid == process.pid
    assert dead.is_stale(datetime.now(UTC))
    with repo.lock():  # a stale lock blocks nobody
        removed = repo.unlock()
        assert [lock.id for lock in removed] == [dead.id]  # ...and unlock removes only it
        assert len(repo.list_locks()) == 1


def test_old_lock_from_another_host_is_stale_and_fresh_one_is_not(repo: Repository) -> None:
    now = datetime.now(UTC)
    fresh = LockInfo("a", True, "elsewhere", 1, now - timedelta(minutes=10), now)
    old = LockInfo("b", True, "elsewhere", 1, now - timedelta(minutes=31), now)
    assert not fresh.is_stale(now) and old.is_stale(now)
    living_here = LockInfo("c", True, socket.gethostname(), 1, now, now)  # pid 1 always exists
    assert not living_here.is_stale(now)


def test_unlock_force_removes_live_locks(repo: Repository) -> None:
    lock = repo.lock()
    assert repo.unlock() == []
    assert len(repo.unlock(force=True)) == 1
    lock.release()  # deleting an already removed lock file is fine
    assert repo.list_locks() == []


def test_unreadable_lock_blocks_until_forced(repo: Repository) -> None:
    repo.backend.put("locks/" + "0" * 32, b"garbage")
    with pytest.raises(RepositoryLocked, match="unreadable"):
        repo.lock()
    assert repo.unlock() == []
    assert len(repo.unlock(force=True)) == 1
    with repo.lock():
        pass


def test_stale_after_is_configurable(repo: Repository) -> None:
    store = LockStore(repo.backend, repo.sealer, stale_after=timedelta(seconds=0))
    lock = repo.lock()
    try:
        time.sleep(0.01)
        assert [info.id for info in store.remove()] == [lock.id]
    finally:
        lock.release()


def test_lock_removed_by_force_is_reported_lost(repo: Repository) -> None:
    lock = repo.lock()
    lock.ensure_held()
    repo.unlock(force=True)
    with pytest.raises(RepositoryLocked, match="no longer held"):
        lock.refresh()
    with pytest.raises(RepositoryLocked, match="removed"):
        lock.ensure_held()
    lock.release()
    assert repo.list_locks() == []  # a lost lock is not recreated


def test_lock_not_refreshed_in_time_is_reported_lost(repo: Repository) -> None:
    store = LockStore(repo.backend, repo.sealer, stale_after=timedelta(seconds=0.05))
    lock = RepositoryLock(store, exclusive=False, refresh_interval=timedelta(hours=1)).acquire()
    try:
        time.sleep(0.1)
        with pytest.raises(RepositoryLocked, match="stale"):
            lock.ensure_held()
    finally:
        lock.release()
