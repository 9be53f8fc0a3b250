"""Round trips through the public API: write streams, save a snapshot, read it back, dedup, snapshots."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, make_rows, row_key

from lifeboat.errors import (
    CorruptRepository,
    RepositoryExists,
    RepositoryNotFound,
    SnapshotNotFound,
    StorageError,
    UsageError,
    WrongPassphrase,
)
from lifeboat.repo import LocalBackend, RecordBatch, Repository, Snapshot


def batches(rows: list[bytes], size: int = 100) -> list[RecordBatch]:
    return [
        RecordBatch(rows[i : i + size], [row_key(row) for row in rows[i : i + size]])
        for i in range(0, len(rows), size)
    ]


def backup(repo: Repository, tables: dict[str, list[bytes]], **documents: object) -> tuple[Snapshot, int]:
    with repo.writer() as writer:
        streams = [writer.write_stream(name, batches(rows), {"table": name}) for name, rows in tables.items()]
    snapshot = Snapshot(streams=streams, documents=dict(documents))
    repo.save_snapshot(snapshot)
    return snapshot, writer.stats.bytes_added


def test_round_trip_through_reopen(repo: Repository, repo_path: Path) -> None:
    rows = make_rows(3000)
    snapshot, _ = backup(repo, {"agents": rows, "empty": []}, schema={"ddl": "CREATE TABLE x ()"})
    reopened = Repository.open(repo_path, PASSPHRASE)
    loaded = reopened.load_snapshot(snapshot.id[:6])
    assert loaded == snapshot
    assert loaded.documents == {"schema": {"ddl": "CREATE TABLE x ()"}}
    assert list(reopened.iter_records(loaded.stream("agents"))) == rows
    assert loaded.stream("agents").records == 3000
    assert loaded.stream("empty").blobs == []
    assert b"".join(reopened.iter_stream_data(loaded.stream("agents"))) == b"".join(rows)


def test_zone_maps_select_only_blobs_that_may_hold_the_key(repo: Repository) -> None:
    rows = sorted(make_rows(4000, agents=40), key=row_key)  # streamed ordered by agent key
    snapshot, _ = backup(repo, {"messages": rows})
    stream = snapshot.stream("messages")
    wanted = [row for row in rows if row_key(row) == "agent-0007"]
    chosen = stream.blobs_covering(["agent-0007"])
    assert 0 < len(chosen) < len(stream.blobs) / 4
    got = [row for row in repo.iter_records(stream, ["agent-0007"]) if row_key(row) == "agent-0007"]
    assert got == wanted
    for blob in stream.blobs:
        assert blob.zone_min is not None and blob.zone_max is not None and blob.zone_min <= blob.zone_max


def test_second_backup_of_mostly_unchanged_data_stores_little(repo: Repository) -> None:
    rows = make_rows(20000, seed=1)
    _, first = backup(repo, {"t": rows})
    changed = rows[:5000] + make_rows(20, seed=99, start=10**6) + rows[5000:12000] + rows[12100:]
    changed[15000] = changed[15000].replace(b"\t", b"\tX", 1)
    _, second = backup(repo, {"t": changed})
    assert second < first * 0.10, (first, second)


def test_parallel_producers_share_one_writer(repo: Repository) -> None:
    tables = {f"t{n}": make_rows(1500, seed=n) for n in range(6)}
    results = {}

    def produce(name: str) -> None:
        results[name] = writer.write_stream(name, batches(tables[name]))

    with repo.writer() as writer:
        threads = [threading.Thread(target=produce, args=(name,)) for name in tables]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    repo.save_snapshot(Snapshot(streams=list(results.values())))
    for name, rows in tables.items():
        assert list(repo.iter_records(results[name])) == rows
    assert repo.check(read_data=True).ok


def test_identical_streams_in_parallel_store_each_blob_once(repo: Repository) -> None:
    rows = make_rows(2000)
    with repo.writer() as writer:
        threads = [
            threading.Thread(target=writer.write_stream, args=(f"s{n}", batches(rows))) for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert writer.stats.blobs_deduplicated == 3 * writer.stats.blobs_new


def test_save_snapshot_refuses_blobs_that_are_not_durable(repo: Repository) -> None:
    writer = repo.writer()
    stream = writer.write_stream("t", [make_rows(500)])
    with pytest.raises(CorruptRepository, match="not in the index"):
        repo.save_snapshot(Snapshot(streams=[stream]))
    writer.close()
    repo.save_snapshot(Snapshot(streams=[stream]))


def test_records_must_be_newline_terminated(repo: Repository) -> None:
    with repo.writer() as writer, pytest.raises(ValueError, match="newline"):
        writer.write_stream("t", [[b"no newline"]])


def test_snapshot_resolution(repo: Repository) -> None:
    first = Snapshot(id="ab" + "0" * 62)
    second = Snapshot(id="ac" + "0" * 62)
    repo.save_snapshot(first)
    repo.save_snapshot(second)
    assert repo.resolve_snapshot("latest") == second.id
    assert repo.load_snapshot("ab").id == first.id
    with pytest.raises(SnapshotNotFound, match="ambiguous"):
        repo.resolve_snapshot("a")
    with pytest.raises(SnapshotNotFound):
        repo.resolve_snapshot("ff")
    assert [s.id for s in repo.list_snapshots()] == [first.id, second.id]
    repo.delete_snapshot(first.id)
    assert repo.snapshot_ids() == [second.id]
    with pytest.raises(SnapshotNotFound):
        repo.delete_snapshot(first.id)


def test_init_and_open_errors(repo: Repository, repo_path: Path, tmp_path: Path) -> None:
    with pytest.raises(RepositoryExists):
        Repository.init(repo_path, PASSPHRASE, kdf=FAST_KDF)
    with pytest.raises(RepositoryNotFound):
        Repository.open(tmp_path / "nowhere", PASSPHRASE)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Repository.open(repo_path, "not it")
    with pytest.raises(WrongPassphrase, match="passphrase is required"):
        Repository.open(repo_path, None)
    with pytest.raises(UsageError):
        Repository.init(tmp_path / "other", None)  # encryption is the default: fail closed


def test_unencrypted_repository_needs_explicit_opt_out(plain_repo: Repository, repo_path: Path) -> None:
    rows = make_rows(300)
    backup(plain_repo, {"t": rows})
    reopened = Repository.open(repo_path, None)
    assert not reopened.config.encrypted
    assert list(reopened.iter_records(reopened.load_snapshot("latest").stream("t"))) == rows


def test_local_files_are_owner_only(repo: Repository, repo_path: Path) -> None:
    backup(repo, {"t": make_rows(500)})
    with repo.lock():
        modes = {path: stat.S_IMODE(path.stat().st_mode) for path in [repo_path, *repo_path.rglob("*")]}
    assert any("locks" in str(path) for path in modes)
    for path, mode in modes.items():
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_writer_pack_size_is_respected(repo: Repository) -> None:
    backup(repo, {"t": make_rows(5000)})
    sizes = repo.index.packs().values()
    assert len(sizes) > 3
    assert max(sizes) < SMALL_PACK + SMALL_CHUNKS.max_size + 4096


class FailingBackend(LocalBackend):
    """Fails the ``fail_at``-th pack upload, as a full disk or a dropped connection would."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root)
        self.fail_at, self.pack_puts = fail_at, 0

    def put(self, name: str, data: bytes) -> None:
        if name.startswith("data/"):
            self.pack_puts += 1
            if self.pack_puts == self.fail_at:
                raise OSError(28, "No space left on device")
        super().put(name, data)


def test_failed_pack_upload_fails_the_writer_and_leaves_no_snapshot(
    repo: Repository, repo_path: Path
) -> None:
    broken = Repository.open(FailingBackend(repo_path, fail_at=3), PASSPHRASE)
    streams = []
    with pytest.raises(StorageError, match="No space left"), broken.writer() as writer:
        streams.append(writer.write_stream("t", batches(make_rows(8000))))
    with pytest.raises(StorageError, match="earlier pack upload"):
        writer.add_blob(b"more\n")
    assert broken.snapshot_ids() == []
    report = broken.check(read_data=True)
    assert report.ok, report.errors
    assert len(broken.index.packs()) == 2  # the packs stored before the failure are indexed: reusable


def test_repository_from_a_newer_lifeboat_is_refused(repo: Repository, repo_path: Path) -> None:
    config = json.loads((repo_path / "config").read_text())
    config["version"] = 4
    (repo_path / "config").write_text(json.dumps(config))
    with pytest.raises(CorruptRepository, match="version 4 is newer"):
        Repository.open(repo_path, PASSPHRASE)


def test_repositories_sharing_ids_cut_identical_blobs(repo: Repository, tmp_path: Path) -> None:
    twin = Repository.init(tmp_path / "twin", "other passphrase", kdf=FAST_KDF, share_ids_with=repo)
    assert twin.keys.id_key == repo.keys.id_key and twin.keys.encryption != repo.keys.encryption
    assert twin.config.chunker == repo.config.chunker
    rows = make_rows(2000)
    first, _ = backup(repo, {"t": rows})
    second, _ = backup(twin, {"t": rows})
    assert first.stream("t").blobs == second.stream("t").blobs


def test_init_refuses_a_non_empty_location(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not mix with a repository")
    with pytest.raises(RepositoryExists, match="not empty"):
        Repository.init(tmp_path, PASSPHRASE, kdf=FAST_KDF)


def test_listing_can_skip_an_unreadable_manifest(repo: Repository, repo_path: Path) -> None:
    good = Snapshot()
    repo.save_snapshot(good)
    (repo_path / "snapshots" / ("e" * 64)).write_bytes(b"garbage")
    with pytest.raises(CorruptRepository):
        repo.list_snapshots()
    assert [s.id for s in repo.list_snapshots(skip_unreadable=True)] == [good.id]
