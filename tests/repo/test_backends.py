"""One suite every storage backend must pass (local directory, S3 via moto's server mode)."""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, make_rows

from lifeboat.errors import UsageError
from lifeboat.repo import Backend, LocalBackend, RecordBatch, Repository, S3Backend, Snapshot, open_backend
from lifeboat.repo.backends import unguarded
from lifeboat.repo.backends.s3 import parse_s3_url


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        yield LocalBackend(tmp_path / "store")
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = f"lifeboat-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield S3Backend(f"s3://{bucket}/some/prefix", endpoint_url=endpoint)


def names(backend: Backend, prefix: str = "") -> dict[str, int]:
    return {info.name: info.size for info in backend.list(prefix)}


def test_put_get_list_delete(backend: Backend) -> None:
    assert names(backend) == {}
    backend.put("config", b"{}")
    backend.put("data/ab/abcdef", b"0123456789")
    backend.put("data/cd/cdef01", b"")
    assert names(backend) == {"config": 2, "data/ab/abcdef": 10, "data/cd/cdef01": 0}
    assert names(backend, "data/") == {"data/ab/abcdef": 10, "data/cd/cdef01": 0}
    assert names(backend, "data/ab") == {"data/ab/abcdef": 10}
    assert backend.get("data/ab/abcdef") == b"0123456789"
    assert backend.exists("config") and not backend.exists("nope")
    assert backend.size("data/ab/abcdef") == 10
    backend.delete("config")
    backend.delete("config")  # idempotent
    assert not backend.exists("config")


def test_ranged_get(backend: Backend) -> None:
    backend.put("f", bytes(range(100)))
    assert backend.get("f", 10, 5) == bytes(range(10, 15))
    assert backend.get("f", 95) == bytes(range(95, 100))
    assert backend.get("f", 0, 100) == bytes(range(100))
    assert backend.get("f", 98, 10) == bytes([98, 99])
    assert backend.get("f", 10, 0) == b""


def test_missing_files_raise_file_not_found(backend: Backend) -> None:
    for call in (
        lambda: backend.get("gone"),
        lambda: backend.get("gone", 5, 5),
        lambda: backend.size("gone"),
    ):
        with pytest.raises(FileNotFoundError):
            call()


def test_put_replaces_whole_file(backend: Backend) -> None:
    backend.put("locks/x", b"first version, long")
    backend.put("locks/x", b"second")
    assert backend.get("locks/x") == b"second"


def test_concurrent_puts(backend: Backend) -> None:
    def put(number: int) -> None:
        backend.put(f"index/{number:04d}", bytes([number]) * 1000)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert names(backend, "index/") == {f"index/{n:04d}": 1000 for n in range(16)}


def test_invalid_names_are_refused(backend: Backend) -> None:
    for name in ("", "/abs", "a/../b", "a//b", "."):
        with pytest.raises(ValueError):
            backend.put(name, b"x")


def test_whole_repository_on_backend(backend: Backend) -> None:
    repo = Repository.init(backend, PASSPHRASE, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, kdf=FAST_KDF)
    rows = make_rows(2000)
    with repo.lock(), repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows)])
    repo.save_snapshot(Snapshot(streams=[stream]))
    reopened = Repository.open(backend, PASSPHRASE)
    assert list(reopened.iter_records(reopened.load_snapshot("latest").stream("t"))) == rows
    report = reopened.check(read_data=True)
    assert report.ok, report.findings
    assert report.packs_read > 1


def test_open_backend_urls(tmp_path: Path) -> None:
    assert isinstance(unguarded(open_backend(tmp_path)), LocalBackend)
    assert isinstance(unguarded(open_backend(f"file://{tmp_path}")), LocalBackend)
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(UsageError, match="unsupported repository URL scheme"):  # exit 2, one line
        open_backend("ftp://host/x")
    with pytest.raises(UsageError, match="not an s3://bucket/prefix URL"):
        open_backend("s3://")


def test_s3_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    bucket = f"lifeboat-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    monkeypatch.setenv("LIFEBOAT_S3_ENDPOINT", moto_endpoint)
    backend = open_backend(f"s3://{bucket}")
    backend.put("config", b"x")
    assert backend.get("config") == b"x"


def test_s3_missing_bucket_is_no_repository(moto_endpoint: str) -> None:
    from lifeboat.errors import RepositoryNotFound

    backend = S3Backend(f"s3://no-such-bucket-{secrets.token_hex(4)}/x", endpoint_url=moto_endpoint)
    assert list(backend.list()) == []
    with pytest.raises(RepositoryNotFound):
        Repository.open(backend, PASSPHRASE)


def test_local_list_prefix_cannot_escape_the_root(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("x")
    backend = LocalBackend(tmp_path / "store")
    backend.put("inside", b"y")
    with pytest.raises(ValueError):
        list(backend.list("../"))
    assert [info.name for info in backend.list("ins")] == ["inside"]


def test_list_gives_the_storage_modification_time(backend: Backend) -> None:
    """Lock staleness and prune's safety margin rely on the storage's own times (FORMAT.md §9, §11)."""
    import time

    before = time.time()
    backend.put("locks/" + "ab" * 16, b"x")
    (info,) = backend.list("locks/")
    assert info.mtime is not None and before - 5 <= info.mtime <= time.time() + 5


def test_put_of_a_bytearray(backend: Backend) -> None:
    """A pack is stored from the buffer it was built in (a bytearray), not from a copy as bytes."""
    data = bytearray(random.Random(7).randbytes(1_500_000))
    backend.put("data/ab/pack", data)
    assert backend.size("data/ab/pack") == len(data)
    assert backend.get("data/ab/pack") == data
    assert backend.get("data/ab/pack", 299_990, 20) == data[299_990:300_010]
