"""SIGKILL a backup at every file write: no broken snapshot is ever visible, check stays clean.

The victim runs in a forked process (a real process, killed for real, without paying for a new
interpreter); it kills itself at the N-th put, for every N the backup performs.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import pytest
from crash_writer import back_up_twice, expected_tables
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK

from lifeboat.repo import Repository


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty repository copied for each run: same keys, hence same chunks, packs and put count."""
    path = tmp_path_factory.mktemp("template") / "repo"
    Repository.init(path, PASSPHRASE, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, kdf=FAST_KDF)
    return path


@pytest.fixture(scope="module")
def total_puts(template: Path, tmp_path_factory: pytest.TempPathFactory) -> int:
    path = tmp_path_factory.mktemp("count") / "repo"
    shutil.copytree(template, path)
    puts = back_up_twice(str(path), PASSPHRASE, 0, "before")
    assert puts >= 8  # at least: 2 x (lock, lock removal is a delete, 2+ packs, index, manifest)
    return puts


def run_victim(repo_path: Path, kill_at: int, mode: str) -> int | None:
    process = multiprocessing.get_context("fork").Process(
        target=back_up_twice, args=(str(repo_path), PASSPHRASE, kill_at, mode)
    )
    process.start()
    process.join(60)
    return process.exitcode


def assert_intact_after_crash(repo_path: Path, context: str) -> None:
    repo = Repository.open(repo_path, PASSPHRASE)
    expected = expected_tables()
    for snapshot in repo.list_snapshots():  # whatever is visible is whole and readable
        tables = expected[int(snapshot.tags[0])]
        for stream in snapshot.streams:
            assert list(repo.iter_records(stream)) == tables[stream.name], context
    report = repo.check(read_data=True)
    assert report.ok, (context, report.errors)
    assert {f.kind for f in report.findings} <= {"unindexed-pack"}, context

    removed = repo.unlock()  # the dead victim's lock is stale: same host, no such pid
    assert all(lock.pid != os.getpid() for lock in removed), context
    assert repo.list_locks() == [], context
    with repo.lock(exclusive=True):
        pass


@pytest.mark.parametrize(("mode", "step"), [("before", 1), ("torn", 2)])
def test_sigkill_at_every_write(
    template: Path, total_puts: int, tmp_path: Path, mode: str, step: int
) -> None:
    snapshots_seen = set()
    for kill_at in range(1, total_puts + 1, step):
        path = tmp_path / f"repo-{kill_at}"
        shutil.copytree(template, path)
        context = f"killed at put {kill_at}/{total_puts} ({mode})"
        assert run_victim(path, kill_at, mode) == -signal.SIGKILL, context
        assert_intact_after_crash(path, context)
        snapshots_seen.add(len(Repository.open(path, PASSPHRASE).snapshot_ids()))
    assert snapshots_seen == {0, 1}  # the runs died before the first, and between the two snapshots
