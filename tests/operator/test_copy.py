"""copy: a second repository, encrypted or not, dedup-aware, that passes check --read-data."""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_testing import add_snapshot, rows, small_repo, stream_records

from lifeboat.errors import UsageError
from lifeboat.repo.copy import copy_snapshots
from lifeboat.repo.repository import Repository


@pytest.mark.parametrize("encrypt", [True, False], ids=["to-encrypted", "to-unencrypted"])
def test_copy_is_complete_checked_and_deduplicated(repo: Repository, tmp_path: Path, encrypt: bool) -> None:
    first = add_snapshot(repo, rows(2000, seed=1), tags=["nightly"])
    second = add_snapshot(repo, rows(2000, seed=1) + rows(200, seed=2, start=2000))
    target = small_repo(tmp_path / "copy", encrypt=encrypt, passphrase="another passphrase")

    stats = copy_snapshots(repo, target)

    assert stats.copied == [first.id, second.id] and stats.skipped == []
    assert stats.blobs_deduplicated == 0  # shared blobs were read once, not stored twice
    assert stats.blobs_read == len(first.blob_ids() | second.blob_ids())
    report = target.check(read_data=True)
    assert report.ok and report.snapshots_checked == 2
    for snapshot in (first, second):
        assert stream_records(target, snapshot.id) == stream_records(repo, snapshot.id)
        copied = target.read_snapshot(snapshot.id)
        assert (copied.time, copied.tags, copied.documents) == (
            snapshot.time,
            snapshot.tags,
            snapshot.documents,
        )
    if not encrypt:
        first_pack = next(iter(target.backend.list("data/")))
        assert target.backend.get(first_pack.name, 0, 4) == b"(\xb5/\xfd"  # a bare zstd frame: not sealed
    else:
        assert target.keys.id_key != repo.keys.id_key  # re-keyed, not a byte copy

    third = add_snapshot(repo, rows(2000, seed=1) + rows(10, seed=3, start=5000))
    again = copy_snapshots(repo, target)
    assert again.copied == [third.id] and again.skipped == [first.id, second.id]
    assert again.blobs_new < len(third.blob_ids())  # most blobs were already in the target
    assert again.bytes_added < stats.bytes_added


def test_copy_selected_snapshots_and_refuse_self(repo: Repository, tmp_path: Path) -> None:
    add_snapshot(repo, rows(300, seed=4))
    wanted = add_snapshot(repo, rows(300, seed=5))
    target = small_repo(tmp_path / "copy")
    assert copy_snapshots(repo, target, [wanted.id]).copied == [wanted.id]
    assert target.snapshot_ids() == [wanted.id]
    with pytest.raises(UsageError, match="same repository"):
        copy_snapshots(repo, Repository.open(repo.backend.url, "correct horse battery staple"))


def test_copy_reads_only_the_chosen_manifests_and_skips_one_forgotten_since(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller chose the ids from manifests it read: each chosen one is read once more, to be
    copied, and no other; one removed by a concurrent forget before the locks is left out."""
    first = add_snapshot(repo, rows(300, seed=6))
    add_snapshot(repo, rows(300, seed=7))  # not chosen
    gone = add_snapshot(repo, rows(300, seed=8))
    last = add_snapshot(repo, rows(300, seed=9))
    repo.delete_snapshot(gone.id)
    target = small_repo(tmp_path / "copy")
    read: list[str] = []
    original = Repository.read_snapshot
    monkeypatch.setattr(
        Repository,
        "read_snapshot",
        lambda self, snapshot_id: read.append(snapshot_id) or original(self, snapshot_id),
    )

    stats = copy_snapshots(repo, target, [last.id, gone.id, first.id])

    assert stats.copied == [last.id, first.id]  # in the order given
    assert read == [last.id, first.id]
    assert sorted(target.snapshot_ids()) == sorted([first.id, last.id])
