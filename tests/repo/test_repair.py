"""Repair (issue 13): after one damaged file, ``check`` names it, ``repair`` brings the repository back
to a state where ``check`` passes, every undamaged snapshot restores and a new backup restores."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_testing import FAST_KDF, PASSPHRASE, make_rows, row_key

from lifeboat.errors import CorruptRepository
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo.locks import RepositoryLock
from lifeboat.repo.repair import (
    damage_marks,
    damaged_key_files,
    damaged_snapshots,
    forget_snapshots,
    mark_damaged,
    remove_key_files,
    repair_config,
    repair_index,
    salvage_packs,
)

TABLES = {"agents": 3, "messages": 4}


def back_up(repo: Repository, seed: int) -> tuple[Snapshot, dict[str, list[bytes]]]:
    tables = {name: make_rows(1200, seed=seed * 10 + offset) for name, offset in TABLES.items()}
    with repo.lock(), repo.writer() as writer:
        streams = [
            writer.write_stream(name, [RecordBatch(rows, [row_key(r) for r in rows])])
            for name, rows in tables.items()
        ]
    snapshot = Snapshot(streams=streams)
    repo.save_snapshot(snapshot)
    return snapshot, tables


def contents(repo: Repository, snapshot_id: str) -> dict[str, list[bytes]]:
    snapshot = repo.read_snapshot(snapshot_id)
    return {stream.name: list(repo.iter_records(stream)) for stream in snapshot.streams}


def some_pack_of(repo: Repository, snapshot: Snapshot, repo_path: Path) -> Path:
    location = repo.index.get(snapshot.streams[0].blobs[0].id)
    assert location is not None
    return repo_path / "data" / location.pack_id[:2] / location.pack_id


def damage(kind: str, repo: Repository, victim: Snapshot, repo_path: Path) -> None:
    if kind == "pack-deleted":
        some_pack_of(repo, victim, repo_path).unlink()
    elif kind == "pack-truncated":
        pack = some_pack_of(repo, victim, repo_path)
        pack.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
    elif kind == "blob-damaged":
        pack = some_pack_of(repo, victim, repo_path)
        location = repo.index.get(victim.streams[0].blobs[0].id)
        assert location is not None
        data = bytearray(pack.read_bytes())
        data[location.offset + 20] ^= 0xFF
        pack.write_bytes(bytes(data))
    elif kind == "index-damaged":
        for index_file in (repo_path / "index").iterdir():
            index_file.write_bytes(index_file.read_bytes()[:-3] + b"xyz")
    elif kind == "manifest-damaged":
        manifest = repo_path / "snapshots" / victim.id
        manifest.write_bytes(manifest.read_bytes()[:-1] + b"!")
    elif kind == "lock-garbage":
        (repo_path / "locks").mkdir(exist_ok=True)
        (repo_path / "locks" / ("ab" * 16)).write_bytes(b"garbage")


@pytest.mark.parametrize(
    "kind",
    ["pack-deleted", "pack-truncated", "blob-damaged", "index-damaged", "manifest-damaged", "lock-garbage"],
)
def test_damage_matrix(repo: Repository, repo_path: Path, kind: str) -> None:
    snapshots = [back_up(repo, seed) for seed in (1, 2, 3)]
    victim = snapshots[1][0]
    damage(kind, repo, victim, repo_path)
    repo = Repository.open(repo_path, PASSPHRASE)

    report = repo.check(read_data=True)
    if kind == "lock-garbage":
        assert report.ok  # check reads no locks; the garbage lock only blocks: unlock --remove-all
        assert any(not lock.readable for lock in repo.list_locks())
        repo.unlock(force=True)
    else:
        assert not report.ok
        if kind != "index-damaged":
            assert victim.id in report.affected_snapshots  # check names what the damage costs

    # repair: the index from the pack trailers, then the snapshots that lost data are forgotten
    lock = RepositoryLock(repo.locks, exclusive=True).acquire()  # as `lifeboat repair index` does
    fixed = repair_index(repo)
    salvaged = salvage_packs(repo, repo.check(read_data=True))
    lock.release()
    assert fixed.index_files_written >= 1
    if kind in ("pack-truncated", "blob-damaged"):
        assert salvaged.packs_damaged and salvaged.blobs_salvaged > 0 and salvaged.blobs_lost
    lost = damaged_snapshots(repo, repo.check(read_data=True))
    expected_lost = {victim.id} if kind not in ("index-damaged", "lock-garbage") else set()
    assert {item.snapshot for item in lost} == expected_lost
    for item in lost:
        assert item.readable == (kind != "manifest-damaged")
        if item.readable:
            assert item.streams and all(stream.records_lost > 0 for stream in item.streams)
    forget_snapshots(repo, [item.snapshot for item in lost])

    report = repo.check(read_data=True)
    assert report.ok, [f.message for f in report.errors]
    for snapshot, tables in snapshots:
        if snapshot.id not in expected_lost:
            assert contents(repo, snapshot.id) == tables
    again, tables = back_up(repo, 2)  # the next backup stores the lost blobs again
    assert contents(Repository.open(repo_path, PASSPHRASE), again.id) == tables
    assert Repository.open(repo_path, PASSPHRASE).check(read_data=True).ok


def test_a_damaged_config_is_rebuilt_from_the_key_file(repo: Repository, repo_path: Path) -> None:
    snapshot, tables = back_up(repo, 1)
    (repo_path / "config").write_text('{"format": "lifeboat-repository", "version": 2, "encr')
    with pytest.raises(CorruptRepository, match="config"):
        Repository.open(repo_path, PASSPHRASE)
    rebuilt = repair_config(repo.backend, PASSPHRASE)
    assert rebuilt == repo.config
    assert contents(Repository.open(repo_path, PASSPHRASE), snapshot.id) == tables


def test_a_format_1_key_file_holds_no_settings_to_rebuild_from(tmp_path: Path) -> None:
    old = Repository.init(tmp_path / "old", PASSPHRASE, kdf=FAST_KDF, version=1)
    (tmp_path / "old" / "config").write_text("garbage")
    with pytest.raises(CorruptRepository, match="predates format 2"):
        repair_config(old.backend, PASSPHRASE)


def test_a_damaged_key_file_is_named_and_removed(repo: Repository, repo_path: Path) -> None:
    (repo_path / "keys" / ("0" * 32)).write_text("{}")
    report = repo.check()
    assert [f.kind for f in report.errors] == ["bad-key-file"] and "0" * 32 in report.errors[0].message
    opened = Repository.open(repo_path, PASSPHRASE)
    assert damaged_key_files(opened) == ["keys/" + "0" * 32]
    remove_key_files(opened, damaged_key_files(opened))
    assert Repository.open(repo_path, PASSPHRASE).check().ok
    with pytest.raises(CorruptRepository, match="opened the repository"):
        remove_key_files(opened, [str(opened.key_file)])


def test_damaged_snapshots_kept_are_marked_until_a_backup_makes_them_whole(
    repo: Repository, repo_path: Path
) -> None:
    snapshots = [back_up(repo, seed) for seed in (1, 2)]
    victim = snapshots[1][0]
    damage("pack-deleted", repo, victim, repo_path)
    repo = Repository.open(repo_path, PASSPHRASE)
    lost = damaged_snapshots(repo, repo.check())
    mark_damaged(repo, lost)
    marks = damage_marks(repo)
    assert list(marks) == [victim.id] and "rows)" in marks[victim.id]
    (repo_path / "damaged" / ("0" * 64)).write_bytes(b"planted")  # counts, and says so
    assert "cannot be read" in damage_marks(repo)["0" * 64]

    back_up(repo, 2)  # stores the lost blobs again: the victim is whole
    assert damaged_snapshots(repo, repo.check()) == []
    mark_damaged(repo, [])  # what `repair snapshots` does when it finds nothing
    assert damage_marks(repo) == {}
    assert contents(repo, victim.id) == snapshots[1][1]


def test_forgetting_a_marked_snapshot_drops_its_mark(repo: Repository, repo_path: Path) -> None:
    snapshot, _ = back_up(repo, 1)
    damage("pack-deleted", repo, snapshot, repo_path)
    mark_damaged(repo, damaged_snapshots(repo, repo.check()))
    repo.delete_snapshot(snapshot.id)
    assert damage_marks(repo) == {}
