"""Storage backends behind one small protocol; ``open_backend`` turns a URL or path into one."""

from __future__ import annotations

import os

from lifeboat.errors import UsageError
from lifeboat.repo.backends.base import Backend, FileInfo
from lifeboat.repo.backends.guarded import GuardedBackend, RetryPolicy, guard, unguarded
from lifeboat.repo.backends.local import LocalBackend
from lifeboat.repo.backends.s3 import S3Backend


def open_backend(location: str | os.PathLike[str] | Backend) -> Backend:
    """``s3://bucket/prefix`` -> S3, ``file:///path`` or a plain path -> local directory; every
    backend comes wrapped once in the storage-error boundary (:mod:`.guarded`)."""
    if isinstance(location, Backend):
        return guard(location)
    return guard(_backend(location))


def _backend(location: str | os.PathLike[str]) -> Backend:
    text = os.fspath(location)
    if text.startswith("s3://"):
        try:
            return S3Backend(text)
        except ValueError as exc:
            raise UsageError(f"{exc} (a repository is a path or s3://bucket/prefix)") from None
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise UsageError(f"unsupported repository URL scheme: {text!r} (use a path or s3://bucket/prefix)")
    return LocalBackend(text)


__all__ = [
    "Backend",
    "FileInfo",
    "GuardedBackend",
    "LocalBackend",
    "RetryPolicy",
    "S3Backend",
    "guard",
    "open_backend",
    "unguarded",
]
