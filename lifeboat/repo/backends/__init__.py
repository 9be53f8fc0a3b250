"""Storage backends behind one small protocol; ``open_backend`` turns a URL or path into one."""

from __future__ import annotations

import os

from lifeboat.errors import UsageError
from lifeboat.repo.backends.base import Backend, FileInfo
from lifeboat.repo.backends.local import LocalBackend
from lifeboat.repo.backends.s3 import S3Backend


def open_backend(location: str | os.PathLike[str] | Backend) -> Backend:
    """``s3://bucket/prefix`` -> S3, ``file:///path`` or a plain path -> local directory."""
    if isinstance(location, Backend):
        return location
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


__all__ = ["Backend", "FileInfo", "LocalBackend", "S3Backend", "open_backend"]
