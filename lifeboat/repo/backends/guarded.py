"""The one boundary where storage failures become lifeboat errors (restic's ``backend/retry``).

Every backend :func:`lifeboat.repo.backends.open_backend` returns is wrapped once in
:class:`GuardedBackend`, which

* retries the failures that are usually transient — connection refused or reset, timeouts,
  throttling and 5xx answers — a bounded number of times with exponential backoff and jitter;
* turns every storage failure (``OSError``, botocore's endpoint and client errors, a file name
  in a listing that is not a repository name) into one :class:`~lifeboat.errors.StorageError`
  carrying the location and a one-line message, so no backend exception reaches an operator as
  a traceback;
* leaves ``FileNotFoundError`` alone: a missing file is part of the backend contract (the
  repository turns it into "no repository", "missing pack", ...), not a storage failure.

The backends themselves stay simple and do not retry (boto3 is configured for one attempt), so
a failure is retried in exactly one place.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from lifeboat.errors import StorageError
from lifeboat.repo.backends.base import Backend, FileInfo, check_name

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.EPIPE}
)
TRANSIENT_S3_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "502",
        "504",
    }
)
DENIED_S3_CODES = frozenset({"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``base_delay`` * 2**n (capped, with +-50% jitter) between."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2**attempt) * random.uniform(0.5, 1.5)


DEFAULT_POLICY = RetryPolicy()


class GuardedBackend:
    """A backend whose failures are retried when transient and always reported as StorageError."""

    def __init__(self, inner: Backend, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.inner = inner
        self.url = inner.url
        self.policy = policy

    def __repr__(self) -> str:
        return f"GuardedBackend({self.inner!r})"

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        """Retried only until the first entry: a listing half consumed cannot be replayed."""
        attempt = 0
        while True:
            entries = iter(self.inner.list(prefix))
            try:
                first = next(entries, None)
                break
            except Exception as exc:
                attempt = self._retry_or_raise(exc, "list", prefix or "/", attempt)
        if first is None:
            return
        try:
            for entry in _chain(first, entries):
                if _is_directory_marker(entry):
                    continue  # "data/" objects that S3 consoles create for folders
                try:
                    check_name(entry.name)
                except ValueError as exc:
                    raise StorageError(
                        f"{self.url}: the listing of {prefix or '/'} holds {entry.name!r}, not a repository "
                        "file name (remove it from the storage)",
                        location=self._where(entry.name),
                    ) from exc
                yield entry
        except StorageError:
            raise
        except Exception as exc:
            raise self._translate(exc, "list", prefix or "/") from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call("read", name, lambda: self.inner.get(name, offset, length))

    def put(self, name: str, data: bytes | bytearray) -> None:
        self._call("write", name, lambda: self.inner.put(name, data))

    def delete(self, name: str) -> None:
        self._call("delete", name, lambda: self.inner.delete(name))

    def exists(self, name: str) -> bool:
        return self._call("stat", name, lambda: self.inner.exists(name))

    def size(self, name: str) -> int:
        return self._call("stat", name, lambda: self.inner.size(name))

    # -- the policy --------------------------------------------------------------------------------

    def _call(self, operation: str, name: str, action: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return action()
            except FileNotFoundError:
                raise
            except Exception as exc:
                attempt = self._retry_or_raise(exc, operation, name, attempt)

    def _retry_or_raise(self, exc: Exception, operation: str, name: str, attempt: int) -> int:
        """Sleep and return the next attempt number when ``exc`` is worth retrying; else raise."""
        if isinstance(exc, FileNotFoundError):
            raise exc
        if isinstance(exc, StorageError) or not is_storage_error(exc):
            raise exc  # already translated, or a bug that must stay visible (--debug)
        if not is_transient(exc) or attempt + 1 >= self.policy.attempts:
            raise self._translate(exc, operation, name, attempts=attempt + 1) from exc
        delay = self.policy.delay(attempt)
        log.debug("%s %s failed (%s); retrying in %.2f s", operation, self._where(name), exc, delay)
        time.sleep(delay)
        return attempt + 1

    def _translate(self, exc: Exception, operation: str, name: str, attempts: int = 1) -> StorageError:
        where = self._where(name)
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        return StorageError(f"cannot {operation} {where}: {describe(exc)}{tries}", location=where)

    def _where(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name.lstrip('/')}"


def guard(backend: Backend, policy: RetryPolicy = DEFAULT_POLICY) -> Backend:
    """``backend`` wrapped once (a backend already guarded is returned as it is)."""
    return backend if isinstance(backend, GuardedBackend) else GuardedBackend(backend, policy)


def unguarded(backend: Backend) -> Backend:
    """The backend inside the guard (for what only one kind of backend can do, e.g. chmod a root)."""
    return backend.inner if isinstance(backend, GuardedBackend) else backend


def is_storage_error(exc: BaseException) -> bool:
    """OSError (disks, sockets, permissions) and botocore's errors; anything else is a bug."""
    if isinstance(exc, OSError):
        return True
    return type(exc).__module__.startswith(("botocore", "urllib3", "boto3"))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PermissionError):
        return False
    if isinstance(exc, OSError) and not _is_botocore(exc):
        return exc.errno in TRANSIENT_ERRNOS
    code = s3_error_code(exc)
    if code:
        return code in TRANSIENT_S3_CODES
    # botocore's connection family: EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
    # ConnectionClosedError, ... (all HTTPClientError); credentials or parameter errors are not
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"HTTPClientError", "ConnectionError", "ConnectionClosedError", "ReadTimeoutError"})


def describe(exc: BaseException) -> str:
    """One line: what the operator can act on."""
    code = s3_error_code(exc)
    if isinstance(exc, PermissionError):
        return "permission denied"
    if code in DENIED_S3_CODES:
        return f"permission denied ({code})"
    if isinstance(exc, OSError) and not _is_botocore(exc) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def s3_error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _is_botocore(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("botocore")


def _is_directory_marker(entry: FileInfo) -> bool:
    return entry.name.endswith("/") and entry.size == 0


def _chain(first: FileInfo, rest: Iterator[FileInfo]) -> Iterator[FileInfo]:
    yield first
    yield from rest
