"""Fault injection: damage the repository on purpose and assert that check reports exactly that."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from repo_testing import make_rows, row_key

from lifeboat.errors import CorruptBlob
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo.config import pack_name
from lifeboat.repo.packs import FOOTER_SIZE


def take_snapshot(repo: Repository, rows: list[bytes]) -> Snapshot:
    with repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows, [row_key(row) for row in rows])])
    snapshot = Snapshot(streams=[stream])
    repo.save_snapshot(snapshot)
    return snapshot


@pytest.fixture
def two_snapshots(repo: Repository) -> tuple[Snapshot, Snapshot]:
    """``old`` holds the first rows; ``new`` holds them plus more, so they share most blobs."""
    base = make_rows(3000, seed=1)
    old = take_snapshot(repo, base)
    new = take_snapshot(repo, base + make_rows(2000, seed=2, start=3000))
    return old, new


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def pack_path(repo: Repository, repo_path: Path, blob_id: str) -> tuple[Path, int, int]:
    location = repo.index.get(blob_id)
    assert location is not None
    return repo_path / pack_name(location.pack_id), location.offset, location.length


def test_healthy_repository_checks_clean(repo: Repository, two_snapshots: tuple[Snapshot, Snapshot]) -> None:
    report = repo.check(read_data=True)
    assert report.ok and report.findings == []
    assert report.snapshots_checked == 2 and report.blobs_read == report.blobs_checked > 10


@pytest.mark.parametrize("seed", range(6))
def test_flipped_byte_in_a_blob_names_the_blob_and_its_snapshots(
    repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot], seed: int
) -> None:
    old, new = two_snapshots
    rng = random.Random(seed)
    victim = rng.choice(sorted(new.blob_ids()))
    path, offset, length = pack_path(repo, repo_path, victim)
    flip_byte(path, offset + rng.randrange(length))

    assert repo.check().ok  # structure is intact: only reading the data finds it
    report = repo.check(read_data=True)
    expected_snapshots = sorted(s.id for s in (old, new) if victim in s.blob_ids())
    assert report.damaged_blobs == {victim: expected_snapshots}
    assert {f.kind for f in report.errors} == {"damaged-blob", "pack-hash"}
    (finding,) = [f for f in report.errors if f.kind == "damaged-blob"]
    assert finding.blob_ids == [victim] and finding.snapshot_ids == expected_snapshots
    assert victim in finding.message
    assert repo.snapshots_needing([victim]) == {victim: expected_snapshots}
    with pytest.raises(CorruptBlob, match=victim):
        repo.read_blob(victim)
    verify = repo.verify_snapshot(new, read_data=True)
    assert verify.damaged_blobs == {victim: [new.id]}
    others = new.blob_ids() - {victim}
    assert repo.verify_snapshot(
        new, read_data=True, blob_ids=others
    ).ok  # a partial restore may still proceed


def test_damaged_trailer_is_found_without_reading_data(
    repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]
) -> None:
    pack_id = sorted(repo.index.packs())[0]
    path = repo_path / pack_name(pack_id)
    flip_byte(path, path.stat().st_size - FOOTER_SIZE - 5)  # inside the sealed trailer
    report = repo.check()
    (finding,) = report.errors
    assert (finding.kind, finding.pack_id) == ("pack-trailer", pack_id)
    assert finding.blob_ids and finding.snapshot_ids
    report = repo.check(
        read_data=True
    )  # the blobs themselves are intact: only the pack's self-description is lost
    assert {f.kind for f in report.errors} == {"pack-trailer", "pack-hash"} and report.damaged_blobs == {}


def test_missing_pack(repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]) -> None:
    old, new = two_snapshots
    # a blob both hold (old's last blob may not be new's: each repository cuts with its own seed)
    victim = sorted(old.blob_ids() & new.blob_ids())[0]
    path, _offset, _length = pack_path(repo, repo_path, victim)
    path.unlink()
    report = repo.check()
    (finding,) = report.errors
    assert finding.kind == "missing-pack" and victim in finding.blob_ids
    assert report.damaged_blobs[victim] == sorted([old.id, new.id])
    assert not repo.verify_snapshot(old).ok


def test_truncated_pack(repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]) -> None:
    pack_id = sorted(repo.index.packs())[-1]
    path = repo_path / pack_name(pack_id)
    path.write_bytes(path.read_bytes()[:-1])
    assert [(f.kind, f.pack_id) for f in repo.check().errors] == [("pack-size", pack_id)]


def test_missing_index_file_leaves_blobs_unindexed(
    repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]
) -> None:
    old, _new = two_snapshots
    first_index = min((repo_path / "index").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    first_index.unlink()
    repo.load_index()
    report = repo.check()
    kinds = {f.kind for f in report.findings}
    assert kinds == {"missing-blob", "unindexed-pack"}
    assert set(report.damaged_blobs) == old.blob_ids()  # the first backup wrote exactly those


def test_undecodable_snapshot_and_index(
    repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]
) -> None:
    old, _new = two_snapshots
    flip_byte(repo_path / "snapshots" / old.id, 30)
    report = repo.check()
    assert [(f.kind, f.snapshot_ids) for f in report.errors] == [("bad-snapshot", [old.id])]
    index_file = next((repo_path / "index").iterdir())
    flip_byte(index_file, 20)
    report = repo.check()
    assert {f.kind for f in report.errors} >= {"bad-snapshot", "bad-index"}


def test_read_data_subset(repo: Repository, two_snapshots: tuple[Snapshot, Snapshot]) -> None:
    packs = len(repo.index.packs())
    report = repo.check(read_data=True, subset_percent=50, seed=1)
    assert report.ok and report.packs_read == round(packs / 2)


def test_rebuild_index_from_pack_trailers(
    repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]
) -> None:
    for index_file in (repo_path / "index").iterdir():
        index_file.unlink()
    repo.load_index()
    assert not repo.check().ok
    with repo.lock(exclusive=True):
        report = repo.rebuild_index()
    pack_files = {path.name for path in (repo_path / "data").rglob("*") if path.is_file()}
    assert set(report.packs_indexed) == pack_files
    assert repo.check(read_data=True).findings == []
    with repo.lock(exclusive=True):
        full = repo.rebuild_index(full=True)
    assert full.packs_indexed and len(full.index_files_removed) == 1
    assert len(list((repo_path / "index").iterdir())) == 1
    assert repo.check(read_data=True).findings == []


def test_full_rebuild_keeps_old_index_when_a_trailer_is_damaged(
    repo: Repository, repo_path: Path, two_snapshots: tuple[Snapshot, Snapshot]
) -> None:
    pack_id = sorted(repo.index.packs())[0]
    path = repo_path / pack_name(pack_id)
    flip_byte(path, path.stat().st_size - FOOTER_SIZE - 3)
    index_files = sorted((repo_path / "index").iterdir())
    report = repo.rebuild_index(full=True)
    assert list(report.packs_unreadable) == [pack_id] and report.index_files_removed == []
    assert all(path.exists() for path in index_files)
