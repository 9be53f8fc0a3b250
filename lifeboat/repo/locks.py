"""Repository locks: files under ``locks/``, shared (backup, restore) or exclusive (prune).

A lock file is ``seal(JSON {"exclusive", "hostname", "host_id", "pid", "time", "created"}, aad="lifeboat:lock")``.
Its holder rewrites it every ``refresh_interval``. A lock is stale when the *storage* last wrote
it more than ``stale_after`` ago (its modification time, compared with the modification time of
the reader's own lock file: both by the storage's clock, so a host whose clock is wrong neither
looks stale nor sees others as stale; the ``time`` inside is used only when the storage gives no
times), or when it was taken in this very process namespace (same ``host_id``: boot id and pid
namespace, not merely the same hostname, which containers share) by a process that no longer
exists. Stale locks block nobody and ``unlock`` removes them.

A holder measures its own lock's age with ``CLOCK_BOOTTIME``, which keeps counting while the
machine is suspended: after a suspend longer than ``stale_after`` others may have judged the
lock stale, so ``ensure_held`` fails, as it does when the lock file is gone from storage.

Acquiring is "check, write, check again": two processes racing may both back off, never both
win with conflicting modes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from lifeboat.errors import RepositoryLocked, note_rolled_back
from lifeboat.repo.backends.base import Backend
from lifeboat.repo.config import LOCKS_DIR, basename, lock_name
from lifeboat.repo.crypto import DecryptionFailed, Sealer

LOCK_AAD = b"lifeboat:lock"
DEFAULT_REFRESH = timedelta(minutes=5)
DEFAULT_STALE_AFTER = timedelta(minutes=30)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockInfo:
    """A lock file as read back. ``readable`` is False when it could not be decoded (blocks everyone)."""

    id: str
    exclusive: bool
    hostname: str
    pid: int
    time: datetime
    created: datetime
    readable: bool = True
    host_id: str | None = None
    mtime: datetime | None = None  # when the storage last wrote the file, by the storage's clock

    def is_stale(self, now: datetime, stale_after: timedelta = DEFAULT_STALE_AFTER) -> bool:
        """``now`` must be on the same clock as ``mtime``: the storage's (``LockStore.storage_now``)."""
        if not self.readable:
            return False
        if now - (self.mtime or self.time) > stale_after:
            return True
        return self.host_id is not None and self.host_id == host_id() and not _process_exists(self.pid)

    def describe(self) -> str:
        mode = "exclusive" if self.exclusive else "shared"
        if not self.readable:
            return f"unreadable lock {self.id}"
        return f"{mode} lock {self.id[:8]} held by pid {self.pid} on {self.hostname} since {self.created:%Y-%m-%d %H:%M:%S}Z"


def host_id() -> str:
    """This machine's boot and pid namespace: pids are comparable only between equal host ids."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return f"{socket.gethostname()}:unknown"  # no /proc: pids are never trusted across processes
    return f"{boot}:{namespace}"


def boottime() -> float:
    """Seconds on a monotonic clock that keeps counting during suspend (Linux CLOCK_BOOTTIME)."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LockStore:
    """Reads and writes lock files of one repository."""

    def __init__(
        self, backend: Backend, sealer: Sealer, stale_after: timedelta = DEFAULT_STALE_AFTER
    ) -> None:
        self.backend = backend
        self.sealer = sealer
        self.stale_after = stale_after

    def write(self, lock_id: str, exclusive: bool, created: datetime) -> None:
        document = {
            "exclusive": exclusive,
            "hostname": socket.gethostname(),
            "host_id": host_id(),
            "pid": os.getpid(),
            "time": datetime.now(UTC).isoformat(),
            "created": created.isoformat(),
        }
        self.backend.put(lock_name(lock_id), self.sealer.seal(json.dumps(document).encode(), LOCK_AAD))

    def read(self, lock_id: str, mtime: float | None = None) -> LockInfo | None:
        """The lock, or None when it vanished meanwhile."""
        try:
            data = self.backend.get(lock_name(lock_id))
        except FileNotFoundError:
            return None
        try:
            document = json.loads(self.sealer.open(data, LOCK_AAD))
            return LockInfo(
                id=lock_id,
                exclusive=bool(document["exclusive"]),
                hostname=str(document["hostname"]),
                pid=int(document["pid"]),
                time=datetime.fromisoformat(document["time"]),
                created=datetime.fromisoformat(document["created"]),
                host_id=str(document["host_id"]) if document.get("host_id") else None,
                mtime=datetime.fromtimestamp(mtime, UTC) if mtime is not None else None,
            )
        except (DecryptionFailed, ValueError, KeyError, TypeError):
            epoch = datetime.fromtimestamp(0, UTC)
            return LockInfo(lock_id, True, "?", 0, epoch, epoch, readable=False)

    def all(self) -> Iterator[LockInfo]:
        for info in self.backend.list(LOCKS_DIR):
            lock = self.read(basename(info.name), info.mtime)
            if lock is not None:
                yield lock

    def storage_now(self, locks: list[LockInfo], own: str | None = None) -> datetime:
        """ "Now" by the storage's clock: the modification time of our own lock file ``own`` when
        the listing has it (we just wrote it), else the local clock (only ever a first guess:
        acquiring checks again once its own lock file is written)."""
        for lock in locks:
            if lock.id == own and lock.mtime is not None:
                return lock.mtime
        return datetime.now(UTC)

    def conflicts(self, exclusive: bool, ignore: str | None = None) -> list[LockInfo]:
        locks = list(self.all())
        now = self.storage_now(locks, ignore)
        return [
            lock
            for lock in locks
            if lock.id != ignore
            and (exclusive or lock.exclusive)
            and not lock.is_stale(now, self.stale_after)
        ]

    def remove(self, *, force: bool = False) -> list[LockInfo]:
        """Delete stale locks (every lock with ``force``); returns what was removed.

        Without a lock of its own, "now" is the local clock: a wrong local clock errs towards
        keeping locks when it is behind; when it is ahead, ``unlock`` may remove a live lock,
        whose holder then fails before saving (``ensure_held``).
        """
        now = datetime.now(UTC)
        removed = []
        for lock in list(self.all()):
            if force or lock.is_stale(now, self.stale_after):
                self.backend.delete(lock_name(lock.id))
                removed.append(lock)
        return removed


class RepositoryLock:
    """A held lock; refreshed by a daemon thread until ``release``. Use as a context manager."""

    def __init__(
        self, store: LockStore, *, exclusive: bool, refresh_interval: timedelta = DEFAULT_REFRESH
    ) -> None:
        self.store = store
        self.exclusive = exclusive
        self.id = secrets.token_hex(16)
        self.created = datetime.now(UTC)
        self._refresh_interval = refresh_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshed = boottime()
        self._lost: str | None = None

    def acquire(self) -> RepositoryLock:
        self._raise_if_conflicting()
        self.store.write(self.id, self.exclusive, self.created)
        try:
            self._raise_if_conflicting()
        except BaseException:  # a conflict, or an interruption: our lock file must not stay
            self.store.backend.delete(lock_name(self.id))
            raise
        self._thread = threading.Thread(
            target=self._refresh_loop, name=f"lifeboat-lock-{self.id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def _raise_if_conflicting(self) -> None:
        conflicts = self.store.conflicts(self.exclusive, ignore=self.id)
        if conflicts:
            wanted = "an exclusive" if self.exclusive else "a shared"
            held = "; ".join(lock.describe() for lock in conflicts)
            raise RepositoryLocked(
                f"cannot take {wanted} lock on {self.store.backend.url}: {held} "
                "(if that process is gone, run `lifeboat unlock`)"
            )

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._refresh_interval.total_seconds()):
            try:
                self.refresh()
            except RepositoryLocked:
                return  # lost: recreating it would hide that someone else may have acted meanwhile
            except Exception:  # keep trying: a transient storage error must not kill the backup
                log.warning("could not refresh lock %s", self.id, exc_info=True)

    def refresh(self) -> None:
        """Rewrite the lock file with a fresh time; ``RepositoryLocked`` if it was removed meanwhile."""
        if not self.store.backend.exists(lock_name(self.id)):
            self._lost = "its lock file was removed (by `unlock --force`?)"
            self.ensure_held()
        started = boottime()
        self.store.write(self.id, self.exclusive, self.created)
        self._refreshed = started

    def ensure_held(self) -> None:
        """Raise ``RepositoryLocked`` unless the lock still protects us.

        Call before an irreversible step (saving a manifest, deleting packs): a lock that was
        removed from storage, or not refreshed for ``stale_after`` by a clock that counts suspend
        (others may consider it stale), no longer keeps a concurrent prune away.
        """
        margin = min(self._refresh_interval, self.store.stale_after / 2).total_seconds()
        if (
            self._lost is None
            and boottime() - self._refreshed > self.store.stale_after.total_seconds() - margin
        ):
            self._lost = "it was not refreshed in time (a suspend or a stall) and may be considered stale"
        if self._lost is None and not self.store.backend.exists(lock_name(self.id)):
            self._lost = "its lock file is gone from the repository (removed by `unlock`?)"
        if self._lost is not None:
            raise RepositoryLocked(
                f"lock {self.id[:8]} on {self.store.backend.url} is no longer held: {self._lost}"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.store.backend.delete(lock_name(self.id))

    def __enter__(self) -> RepositoryLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
        if exc is not None:
            note_rolled_back(exc, f"repository lock {self.id[:8]} released")
