"""prune: unused packs go, partly used packs are repacked or kept, and nothing a snapshot needs is lost,
including under a concurrent backup."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from operator_testing import PASSPHRASE, add_snapshot, rows, stream_records

from lifeboat.errors import RepositoryLocked
from lifeboat.repo.config import DATA_DIR, pack_name
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.packs import PackBuilder
from lifeboat.repo.prune import plan_prune, prune
from lifeboat.repo.repository import Repository


def _packs(repo: Repository) -> set[str]:
    return {info.name for info in repo.backend.list(DATA_DIR)}


def _check_ok(repo: Repository) -> None:
    report = repo.check(read_data=True)
    assert report.ok, [f.message for f in report.errors]


def test_prune_removes_what_forgotten_snapshots_alone_needed(repo: Repository) -> None:
    old = add_snapshot(repo, rows(3000, seed=1))
    kept = add_snapshot(repo, rows(3000, seed=2))
    expected = stream_records(repo, kept.id)
    before = _packs(repo)
    repo.delete_snapshot(old.id)

    stats = prune(repo)

    assert stats.packs_removed > 0 and stats.bytes_freed > 0
    assert stats.packs_before == len(before)
    assert len(_packs(repo)) < len(before)
    assert stream_records(repo, kept.id) == expected
    _check_ok(repo)
    again = prune(repo)  # idempotent: nothing left to do
    assert (again.packs_removed, again.packs_repacked, again.packs_unindexed_removed) == (0, 0, 0)


def test_partly_used_packs_are_repacked_above_the_threshold_and_kept_below(tmp_path: Path) -> None:
    from operator_testing import small_repo

    for threshold, repacked in ((0.0, True), (1.0, False)):
        repo = small_repo(tmp_path / f"repo-{threshold}")
        shared = rows(1500, seed=3)
        first = add_snapshot(repo, shared + rows(1500, seed=4, start=1500))
        second = add_snapshot(repo, shared)  # needs only the blobs of the first half
        repo.delete_snapshot(first.id)
        plan = plan_prune(repo, repack_threshold=threshold)
        assert bool(plan.repack) == repacked
        stats = prune(repo, repack_threshold=threshold)
        assert (stats.packs_repacked > 0) == repacked
        assert stream_records(repo, second.id) == shared
        _check_ok(repo)


def test_unindexed_leftover_packs_are_removed(repo: Repository) -> None:
    snapshot = add_snapshot(repo, rows(500, seed=5))
    builder = PackBuilder()
    builder.add("ab" * 32, b"leftover of an interrupted backup", 10)
    sealed = builder.seal(repo.sealer)
    repo.backend.put(pack_name(sealed.id), sealed.data)

    young = prune(repo)  # written just now: maybe a running backup's, kept (safety margin)
    assert (young.packs_unindexed_young, young.packs_unindexed_removed) == (1, 0)
    assert repo.backend.exists(pack_name(sealed.id))

    stats = prune(repo, safety_margin=timedelta(0))

    assert stats.packs_unindexed_removed == 1
    assert not repo.backend.exists(pack_name(sealed.id))
    assert stream_records(repo, snapshot.id) == rows(500, seed=5)


def test_dry_run_changes_nothing(repo: Repository) -> None:
    old = add_snapshot(repo, rows(2000, seed=6))
    add_snapshot(repo, rows(2000, seed=7))
    repo.delete_snapshot(old.id)
    before = _packs(repo)
    stats = prune(repo, dry_run=True)
    assert stats.dry_run and stats.packs_removed > 0
    assert _packs(repo) == before


def test_prune_waits_for_or_refuses_a_backup_holding_the_shared_lock(repo: Repository) -> None:
    old = add_snapshot(repo, rows(2000, seed=8))
    repo.delete_snapshot(old.id)
    backup_lock = repo.lock()  # a backup in progress
    with pytest.raises(RepositoryLocked):
        prune(repo)
    result: dict[str, object] = {}
    waiting = threading.Thread(target=lambda: result.update(stats=prune(repo, retry_lock=30)))
    waiting.start()
    # the "backup" writes its data and manifest while prune waits
    with repo.writer() as writer:
        stream = writer.write_stream("table:letta.rows", [rows(2000, seed=8)], {})
    snapshot = Snapshot(streams=[stream])
    repo.save_snapshot(snapshot)
    backup_lock.release()
    waiting.join(60)
    assert "stats" in result
    assert list(repo.iter_records(repo.read_snapshot(snapshot.id).streams[0])) == rows(2000, seed=8)
    _check_ok(repo)


def test_a_backup_opened_before_a_prune_does_not_trust_its_stale_index(repo: Repository) -> None:
    data = rows(2000, seed=9)
    old = add_snapshot(repo, data)
    other_process = Repository.open(repo.backend.url, PASSPHRASE)  # index loaded: knows old's blobs
    repo.delete_snapshot(old.id)
    prune(repo)  # deletes exactly those blobs

    fresh = add_snapshot(other_process, data)  # would dedup against deleted blobs without a refresh

    repo.load_index()
    _check_ok(repo)
    assert stream_records(repo, fresh.id) == data


def test_packs_and_index_written_after_prune_started_are_never_deleted(repo: Repository) -> None:
    old = add_snapshot(repo, rows(2000, seed=10))
    repo.delete_snapshot(old.id)
    late: list[Snapshot] = []

    def rogue_writer(_plan: object) -> None:
        # A writer that ignores locks (say, a lock judged stale) stores a snapshot mid-prune.
        intruder = Repository.open(repo.backend.url, PASSPHRASE)
        with intruder.writer() as writer:
            stream = writer.write_stream("table:letta.rows", [rows(1000, seed=11)], {})
        snapshot = Snapshot(streams=[stream])
        intruder.save_snapshot(snapshot)
        late.append(snapshot)

    prune(repo, before_delete=rogue_writer)

    repo.load_index()
    assert stream_records(repo, late[0].id) == rows(1000, seed=11)
    _check_ok(repo)
