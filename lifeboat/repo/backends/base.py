"""The storage contract every backend implements: a flat namespace of immutable named files.

Names are relative, ``/``-separated paths such as ``data/3f/3f9a...`` or ``config``. The repository
layer only ever needs the handful of operations below, so adding a backend (SFTP, GCS, ...) means
implementing them and passing ``tests/repo/test_backends.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class FileInfo:
    """One stored file: its name relative to the repository root, its size in bytes, and when the
    storage last wrote it (UNIX seconds by the *storage's* clock; None if the backend cannot say).

    Lock staleness and prune's safety margin use ``mtime`` rather than a writer's own clock,
    which may be wrong (docs/FORMAT.md §9, §11).
    """

    name: str
    size: int
    mtime: float | None = None


@runtime_checkable
class Backend(Protocol):
    """Storage for one repository.

    Contract:
      * ``put`` is atomic and durable when it returns: a reader sees the old file, no file, or
        the complete new file, never a prefix, even if the process is killed mid-write.
      * ``get`` of a missing name raises ``FileNotFoundError``; so do ``size`` and ranged gets.
      * ``delete`` of a missing name is not an error (deletes are idempotent).
      * ``list(prefix)`` yields every file whose name starts with ``prefix``, in no stated order.
      * Implementations are safe to call from several threads at once.
    """

    url: str

    def list(self, prefix: str = "") -> Iterator[FileInfo]: ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def put(self, name: str, data: bytes | bytearray) -> None: ...

    def delete(self, name: str) -> None: ...

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...


def check_name(name: str) -> str:
    """Refuse names that could escape the repository root or are not canonical."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid repository file name: {name!r}")
    return name
