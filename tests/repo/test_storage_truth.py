"""Storage is the truth: deduplication, manifests, prune and locks rely on what storage holds, not on
what the index or a host's clock says. Never a snapshot that exits 0 and cannot be restored."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from repo_testing import PASSPHRASE, make_rows, row_key

from lifeboat.errors import CorruptRepository, RepositoryLocked
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo import locks as locks_module
from lifeboat.repo.config import lock_name, pack_name
from lifeboat.repo.locks import LOCK_AAD
from lifeboat.repo.prune import prune


def write(repo: Repository, rows: list[bytes]) -> tuple[Snapshot, int]:
    """One backup under a shared lock; returns the snapshot and how many blobs were stored again."""
    with repo.lock(), repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows, [row_key(r) for r in rows])])
    snapshot = Snapshot(streams=[stream])
    repo.save_snapshot(snapshot)
    return snapshot, writer.restored_blobs


def rows_of(repo: Repository, snapshot_id: str) -> list[bytes]:
    return list(repo.iter_records(repo.read_snapshot(snapshot_id).stream("t")))


def pack_files(repo_path: Path) -> list[Path]:
    return sorted(p for p in (repo_path / "data").rglob("*") if p.is_file())


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_lost_pack_is_stored_again_by_the_next_backup(
    repo: Repository, repo_path: Path, damage: str
) -> None:
    rows = make_rows(3000)
    first, _ = write(repo, rows)
    victim = pack_files(repo_path)[0]
    if damage == "deleted":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:100])
    reopened = Repository.open(repo_path, PASSPHRASE)
    second, restored = write(reopened, rows)
    assert restored > 0
    fresh = Repository.open(repo_path, PASSPHRASE)
    assert rows_of(fresh, second.id) == rows
    report = fresh.check(read_data=True)
    assert rows_of(fresh, first.id) == rows  # the lost blobs, stored again, serve the old snapshot too
    assert report.affected_snapshots == [] and {f.kind for f in report.errors} == {
        "missing-pack" if damage == "deleted" else "pack-size"
    }


def test_a_manifest_is_not_saved_when_a_pack_it_needs_vanished(repo: Repository, repo_path: Path) -> None:
    rows = make_rows(2000)
    with repo.lock() as lock, repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows)])
        writer.flush()
        pack_files(repo_path)[0].unlink()  # lost between the upload and the manifest
        with pytest.raises(CorruptRepository, match="pack\\(s\\) it needs are missing"):
            lock.ensure_held()
            repo.save_snapshot(Snapshot(streams=[stream]))
    assert repo.snapshot_ids() == []


def test_an_old_index_file_replayed_after_prune_is_named_and_ignored(
    repo: Repository, repo_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old_rows, kept_rows = make_rows(2000, seed=1), make_rows(2000, seed=2)
    old, _ = write(repo, old_rows)
    kept, _ = write(repo, kept_rows)
    saved = tmp_path / "saved-index"
    shutil.copytree(repo_path / "index", saved)
    repo.delete_snapshot(old.id)
    prune(repo)
    for _ in range(2):  # a second prune carries the list of replaced index files forward
        write(repo, make_rows(10, seed=9))
        prune(repo)
    replayed = sorted(path.name for path in saved.iterdir())
    for index_file in saved.iterdir():  # the attacker puts the pre-prune index files back
        shutil.copy(index_file, repo_path / "index" / index_file.name)

    with caplog.at_level(logging.WARNING, logger="lifeboat.repo.repository"):
        reopened = Repository.open(repo_path, PASSPHRASE)
        again, restored = write(reopened, old_rows)  # nothing to "deduplicate" against: ignored
    assert restored == 0 and len([r for r in caplog.records if "ignoring index file" in r.getMessage()]) == 2
    fresh = Repository.open(repo_path, PASSPHRASE)
    assert rows_of(fresh, again.id) == old_rows and rows_of(fresh, kept.id) == kept_rows
    report = fresh.check(read_data=True)
    assert report.ok  # the replayed files are named, not trusted
    named = sorted(
        f.message.split()[2].removeprefix("index/") for f in report.findings if f.kind == "superseded-index"
    )
    assert named == replayed
    prune(fresh)
    assert not {path.name for path in (repo_path / "index").iterdir()} & set(replayed)


def age_lock(repo_path: Path, lock_id: str, *, clock_behind: timedelta, file_age: timedelta) -> None:
    """Make a held lock look like another host's: its own clock ``clock_behind``, its file ``file_age`` old."""
    path = repo_path / lock_name(lock_id)
    repo = Repository.open(repo_path, PASSPHRASE)
    document = json.loads(repo.sealer.open(path.read_bytes(), LOCK_AAD))
    stamp = (datetime.now(UTC) - clock_behind).isoformat()
    document.update(hostname="backup-host", host_id="another-machine", pid=1, time=stamp, created=stamp)
    path.write_bytes(repo.sealer.seal(json.dumps(document).encode(), LOCK_AAD))
    when = time.time() - file_age.total_seconds()
    os.utime(path, (when, when))


def test_a_lock_from_a_host_whose_clock_is_40_minutes_behind_still_blocks_prune(
    repo: Repository, repo_path: Path
) -> None:
    old, _ = write(repo, make_rows(2000, seed=3))
    repo.delete_snapshot(old.id)
    backup_lock = repo.lock()
    age_lock(repo_path, backup_lock.id, clock_behind=timedelta(minutes=40), file_age=timedelta(0))
    with pytest.raises(RepositoryLocked):
        prune(Repository.open(repo_path, PASSPHRASE))
    backup_lock.release()


def test_a_running_backup_survives_a_prune_that_took_its_lock_for_stale(
    repo: Repository, repo_path: Path
) -> None:
    """Its packs are not indexed yet: the safety margin keeps them, and the backup's snapshot restores."""
    old, _ = write(repo, make_rows(2000, seed=4))
    repo.delete_snapshot(old.id)
    rows = make_rows(3000, seed=5)
    with repo.lock() as lock, repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows)])  # packs uploaded, not yet indexed
        age_lock(repo_path, lock.id, clock_behind=timedelta(minutes=40), file_age=timedelta(minutes=40))
        stats = prune(Repository.open(repo_path, PASSPHRASE))
        assert stats.packs_unindexed_young > 0 and stats.packs_unindexed_removed == 0
        writer.flush()
        lock.ensure_held()
        snapshot = Snapshot(streams=[stream])
        repo.save_snapshot(snapshot)
    assert rows_of(Repository.open(repo_path, PASSPHRASE), snapshot.id) == rows


def test_a_running_backup_whose_indexed_packs_were_pruned_fails_loudly(
    repo: Repository, repo_path: Path
) -> None:
    rows = make_rows(3000, seed=6)
    with pytest.raises(CorruptRepository, match="missing"), repo.lock() as lock, repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows)])
        writer.flush()  # indexed, but no manifest yet: unused in prune's eyes
        age_lock(repo_path, lock.id, clock_behind=timedelta(minutes=40), file_age=timedelta(minutes=40))
        stats = prune(Repository.open(repo_path, PASSPHRASE))
        assert stats.packs_removed > 0
        repo.save_snapshot(Snapshot(streams=[stream]))
    assert repo.snapshot_ids() == []


def test_a_holder_whose_lock_file_was_removed_aborts(repo: Repository, repo_path: Path) -> None:
    with repo.lock() as lock:
        (repo_path / lock_name(lock.id)).unlink()  # `unlock --remove-all` from another host
        with pytest.raises(RepositoryLocked, match="gone from the repository"):
            lock.ensure_held()


def test_a_suspend_longer_than_the_stale_time_loses_the_lock(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    with repo.lock() as lock:
        lock.ensure_held()
        suspended = locks_module.boottime() + 3600  # CLOCK_BOOTTIME keeps counting while suspended
        monkeypatch.setattr(locks_module, "boottime", lambda: suspended)
        with pytest.raises(RepositoryLocked, match="not refreshed in time"):
            lock.ensure_held()


def test_lock_files_carry_the_storage_time(repo: Repository, repo_path: Path) -> None:
    with repo.lock() as lock:
        (info,) = repo.list_locks()
        assert info.id == lock.id and info.mtime is not None
        assert abs((info.mtime - datetime.now(UTC)).total_seconds()) < 60
    assert not repo.backend.exists(pack_name("0" * 64))
