"""A repository in a local directory: atomic writes (temp file, fsync, rename, fsync dir), owner-only."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from lifeboat.repo.backends.base import FileInfo, check_name

FILE_MODE = 0o600
DIR_MODE = 0o700
TEMP_SUFFIX = ".tmp"


class LocalBackend:
    """Files under ``root``; ``put`` never leaves a partial file under its final name."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)
        self._mkdir_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBackend({self.url!r})"

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        # Walk only below the prefix's directory part: listing snapshots must not walk every pack.
        directory = prefix.rpartition("/")[0]
        start = self.root / check_name(directory) if directory else self.root
        if not start.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for filename in filenames:
                if filename.endswith(TEMP_SUFFIX):
                    continue
                name = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                if not name.startswith(prefix):
                    continue
                try:
                    status = os.stat(os.path.join(dirpath, filename))
                except FileNotFoundError:  # deleted while listing
                    continue
                yield FileInfo(name, status.st_size, status.st_mtime)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        with open(self._path(name), "rb") as handle:
            if offset:
                handle.seek(offset)
            return handle.read() if length is None else handle.read(length)

    def put(self, name: str, data: bytes | bytearray) -> None:
        path = self._path(name)
        self._ensure_dir(path.parent)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def _ensure_dir(self, directory: Path) -> None:
        """Create ``directory`` and missing parents with mode 0700, fsyncing each new entry."""
        if directory.is_dir():
            return
        with self._mkdir_lock:
            missing: list[Path] = []
            current = directory
            while not current.is_dir():
                missing.append(current)
                current = current.parent
            for new_dir in reversed(missing):
                try:
                    os.mkdir(new_dir, DIR_MODE)
                except FileExistsError:
                    continue
                os.chmod(new_dir, DIR_MODE)  # in case the umask is stricter than usual
                _fsync_dir(new_dir.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
