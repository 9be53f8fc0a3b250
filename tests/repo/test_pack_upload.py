"""What a pack upload that fails half way leaves behind, on a real S3 endpoint (moto's server mode).

A pack is stored from the buffer it was built in; here the connection fails after half of a pack's
body has reached the server, as a dropped connection or a timeout would.
"""

from __future__ import annotations

import errno
import io
import secrets

import boto3
import pytest
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, back_up, make_rows

from lifeboat.errors import StorageError
from lifeboat.repo import Repository, S3Backend
from lifeboat.repo.backends import GuardedBackend, RetryPolicy
from lifeboat.repo.config import pack_name

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)


class HalfThenTimeout(io.RawIOBase):
    """A request body that gives the first half of ``data``, then fails as a stalled connection does.

    botocore reads a file body whole for its checksum and again for the payload signature (seeking
    back each time), then sends it: the failure comes on the third pass, with half the body sent."""

    def __init__(self, data: bytes | bytearray) -> None:
        super().__init__()
        self.data, self.position, self.passes = memoryview(data), 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset + (len(self.data) if whence == io.SEEK_END else 0)
        return self.position

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self.position == 0:
            self.passes += 1
        end = len(self.data) if self.passes < 3 else len(self.data) // 2
        if self.passes >= 3 and self.position >= end:
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        piece = self.data[self.position : min(end, self.position + len(buffer))]
        memoryview(buffer)[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)


class DroppingS3(S3Backend):
    """The real S3 backend, except that the pack uploads numbered in ``failing`` (1-based, retries
    counted) send half their body and fail."""

    def __init__(self, url: str, endpoint_url: str, failing: set[int]) -> None:
        super().__init__(url, endpoint_url=endpoint_url)
        self.failing, self.pack_puts, self.dropped = failing, 0, 0
        self.passes: list[int] = []  # reads of each failing body: 3 = one HTTP attempt

    def put(self, name: str, data: bytes | bytearray) -> None:
        if not name.startswith("data/"):
            return super().put(name, data)
        self.pack_puts += 1
        if self.pack_puts not in self.failing:
            return super().put(name, data)
        body = HalfThenTimeout(data)
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=body)
        finally:
            self.dropped += body.passes >= 3
            self.passes.append(body.passes)
        raise AssertionError("the upload did not fail")


def dropping_repo(endpoint: str, failing: set[int]) -> tuple[DroppingS3, Repository]:
    bucket = f"lifeboat-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    inner = DroppingS3(f"s3://{bucket}/repo", endpoint, failing)
    backend = GuardedBackend(inner, FAST)
    return inner, Repository.init(
        backend, PASSPHRASE, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, kdf=FAST_KDF
    )


def test_a_pack_upload_failing_half_way_is_sent_again_whole(moto_endpoint: str) -> None:
    s3, repo = dropping_repo(moto_endpoint, failing={2})
    rows = make_rows(6000)
    snapshot = back_up(repo, rows)
    assert s3.dropped == 1 and s3.pack_puts > 3  # the second pack was put again
    reopened = Repository.open(repo.backend, PASSPHRASE)
    assert list(reopened.iter_records(reopened.load_snapshot(snapshot.id).stream("t"))) == rows
    report = reopened.check(read_data=True)  # every pack's name is the SHA-256 of what was stored
    assert report.ok, report.findings


def test_a_pack_upload_that_keeps_failing_leaves_nothing_referenced(moto_endpoint: str) -> None:
    s3, repo = dropping_repo(moto_endpoint, failing={2, 3, 4})  # pack 2 and its two retries
    with pytest.raises(StorageError, match="could not store a pack"):
        back_up(repo, make_rows(6000))
    assert s3.dropped == FAST.attempts
    assert s3.passes == [3] * FAST.attempts  # one HTTP attempt each: the guard retries, botocore not
    assert repo.snapshot_ids() == []
    stored = {info.name: info.size for info in repo.backend.list("data/")}
    reopened = Repository.open(repo.backend, PASSPHRASE)
    indexed = reopened.index.packs()
    assert indexed and all(stored.get(pack_name(pack)) == size for pack, size in indexed.items())
    assert len(stored) == len(indexed)  # the failed pack left no object, not even a prefix
    s3.failing = set()
    rows = make_rows(6000)
    snapshot = back_up(reopened, rows)  # a retry stores the lost blobs and references the rest
    assert list(reopened.iter_records(reopened.load_snapshot(snapshot.id).stream("t"))) == rows
    report = Repository.open(repo.backend, PASSPHRASE).check(read_data=True)
    assert report.ok, report.findings
