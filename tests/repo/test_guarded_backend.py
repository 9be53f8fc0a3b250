"""The storage-error boundary: every backend failure is one StorageError naming the location, and
transient ones are retried a bounded number of times (real local directories, the moto S3 server)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from repo_testing import FAST_KDF, PASSPHRASE

from lifeboat.errors import RepositoryNotFound, StorageError
from lifeboat.repo import FileInfo, LocalBackend, Repository, S3Backend
from lifeboat.repo.backends import GuardedBackend, RetryPolicy, open_backend
from lifeboat.sandbox.postgres import free_port

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
LIFEBOAT = [sys.executable, "-m", "lifeboat"]


class Flaky(LocalBackend):
    """Fails the first ``failures`` calls of every operation with ``error``."""

    def __init__(self, root: Path, error: Exception, failures: int) -> None:
        super().__init__(root)
        self.error, self.failures, self.calls = error, failures, 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self._maybe_fail()
        return super().get(name, offset, length)

    def put(self, name: str, data: bytes) -> None:
        self._maybe_fail()
        super().put(name, data)

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        self._maybe_fail()
        yield from super().list(prefix)


class Listing(LocalBackend):
    def __init__(self, root: Path, names: list[str]) -> None:
        super().__init__(root)
        self.names = names

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        yield from (FileInfo(name, 0 if name.endswith("/") else 1, None) for name in self.names)


def test_transient_errors_are_retried_then_succeed(tmp_path: Path) -> None:
    inner = Flaky(tmp_path, ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), failures=2)
    backend = GuardedBackend(inner, FAST)
    backend.put("config", b"x")
    assert inner.calls == 3 and backend.get("config") == b"x"


def test_transient_errors_give_up_after_the_bounded_attempts(tmp_path: Path) -> None:
    inner = Flaky(tmp_path, TimeoutError(errno.ETIMEDOUT, "Connection timed out"), failures=10)
    with pytest.raises(
        StorageError, match=r"cannot write .*/config: Connection timed out \(after 3 attempts\)"
    ):
        GuardedBackend(inner, FAST).put("config", b"x")
    assert inner.calls == 3


def test_permanent_errors_are_not_retried_and_name_the_location(tmp_path: Path) -> None:
    inner = Flaky(tmp_path, OSError(errno.ENOSPC, "No space left on device"), failures=10)
    with pytest.raises(StorageError) as caught:
        GuardedBackend(inner, FAST).put("data/ab/abcd", b"x")
    assert inner.calls == 1
    assert str(caught.value) == f"cannot write {tmp_path}/data/ab/abcd: No space left on device"
    assert caught.value.location == f"{tmp_path}/data/ab/abcd"


def test_a_missing_file_stays_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GuardedBackend(LocalBackend(tmp_path), FAST).get("config")


def test_a_bad_name_in_a_listing_is_a_storage_error(tmp_path: Path) -> None:
    backend = GuardedBackend(Listing(tmp_path, ["data/", "data/ab/abcd", "data/../escape"]), FAST)
    with pytest.raises(StorageError, match=r"holds 'data/\.\./escape', not a repository file name"):
        list(backend.list("data/"))
    markers_only = GuardedBackend(Listing(tmp_path, ["data/", "data/ab/abcd"]), FAST)
    assert [entry.name for entry in markers_only.list("data/")] == ["data/ab/abcd"]  # folder marker skipped


def test_every_backend_is_wrapped_once(tmp_path: Path) -> None:
    backend = open_backend(tmp_path)
    assert isinstance(backend, GuardedBackend)
    assert open_backend(backend) is backend
    assert isinstance(open_backend(LocalBackend(tmp_path)), GuardedBackend)


# -- as an operator sees it ----------------------------------------------------------------------------


def _cli(
    *args: str, env: dict[str, str] | None = None, drop_root: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI; with ``drop_root``, as root without the capability to bypass file permissions."""
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] if drop_root else []
    full_env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, **(env or {})}
    return subprocess.run(
        [*prefix, *LIFEBOAT, *args], capture_output=True, text=True, env=full_env, timeout=300
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_missing_local_directory(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFound):
        Repository.open(tmp_path / "missing", PASSPHRASE)
    result = _cli("snapshots", "--repo", str(tmp_path / "missing"))
    assert result.returncode == 10 and "no lifeboat repository at" in _one_line(result)
    (tmp_path / "a-file").write_text("not a directory")
    result = _cli("snapshots", "--repo", str(tmp_path / "a-file" / "repo"))
    assert result.returncode in (1, 10), result.stderr
    _one_line(result)


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root's permission bypass with setpriv")
def test_local_permission_denied(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    Repository.init(repo, PASSPHRASE, kdf=FAST_KDF)
    os.chmod(repo, 0o000)
    try:
        result = _cli("snapshots", "--repo", str(repo), drop_root=True)
    finally:
        os.chmod(repo, 0o700)
    line = _one_line(result)
    assert result.returncode == 1 and "permission denied" in line and str(repo) in line, line

    os.chmod(repo, 0o500)  # readable, not writable: taking a lock (creating locks/) fails
    try:
        result = _cli("forget", "--keep-last", "1", "--repo", str(repo), drop_root=True)
    finally:
        os.chmod(repo, 0o700)
    line = _one_line(result)
    assert result.returncode == 1 and "cannot write" in line and "permission denied" in line, line


def test_s3_endpoint_down(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = "lifeboat-endpoint-down"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    Repository.init(S3Backend(f"s3://{bucket}/repo", endpoint_url=moto_endpoint), PASSPHRASE, kdf=FAST_KDF)
    down = f"http://127.0.0.1:{free_port()}"

    inner = S3Backend(f"s3://{bucket}/repo", endpoint_url=down)
    with pytest.raises(StorageError, match=r"cannot (stat|read) s3://.*/config: .*after 3 attempts"):
        Repository.open(GuardedBackend(inner, FAST), PASSPHRASE)

    result = _cli("snapshots", "--repo", f"s3://{bucket}/repo", env={"LIFEBOAT_S3_ENDPOINT": down})
    line = _one_line(result)
    assert result.returncode == 1 and f"s3://{bucket}/repo/config" in line and "attempts" in line, line
    ok = _cli("snapshots", "--repo", f"s3://{bucket}/repo", env={"LIFEBOAT_S3_ENDPOINT": moto_endpoint})
    assert ok.returncode == 0, ok.stderr
