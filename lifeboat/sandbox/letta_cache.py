"""The on-disk cache shared by every sandbox artefact (Letta venv, populated deployment dumps).

Everything lives under ``~/.cache/lifeboat/`` (override: ``LIFEBOAT_CACHE_DIR``). Entries are
built in a temporary sibling directory and renamed into place, so an interrupted build never
looks complete, and builders take an exclusive file lock so two processes (two pytest runs,
a CI warm-up and a test) build each entry once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from lifeboat.errors import SandboxError


def cache_root() -> Path:
    """The cache directory (created on demand)."""
    override = os.environ.get("LIFEBOAT_CACHE_DIR")
    root = Path(override) if override else Path.home() / ".cache" / "lifeboat"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (blocking); released on exit or process death."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_entry(name: str, build: Callable[[Path], object]) -> Path:
    """Return the cache entry ``name``, building it first if absent.

    ``build(tmp_dir)`` fills a fresh temporary directory; on success it is renamed to the
    entry's final path. A failed build leaves nothing behind. Concurrent callers wait on a
    per-entry lock and then reuse the finished entry.
    """
    root = cache_root()
    final = root / name
    if final.is_dir():
        return final
    with file_lock(root / f".{name}.lock"):
        if final.is_dir():
            return final
        _remove_stale_builds(root, name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=root))
        try:
            build(tmp)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if not final.is_dir():
        raise SandboxError(f"cache entry {final} was not created")
    return final


def _remove_stale_builds(root: Path, name: str) -> None:
    """Leftovers of builds that died (we hold the lock, so no build of ``name`` is running)."""
    for stale in root.glob(f".{name}.building-*"):
        shutil.rmtree(stale, ignore_errors=True)
