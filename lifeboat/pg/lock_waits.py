"""Telling the operator that a backup is waiting for a table lock, and on whom.

A backup's COPY needs ACCESS SHARE on each table; DDL or an explicit ``LOCK TABLE`` holding a
stronger lock makes it wait silently. :class:`LockWaitWatcher` polls (from its own connection,
once a second) whether one of the given backends waits for a lock, and reports each new wait
once: the table, the blocking sessions' pids and what they run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from lifeboat.pg.connect import connect

_WAITS = """
SELECT a.pid, COALESCE(format('%%I.%%I', n.nspname, c.relname), l.locktype), b.pid, b.state, left(b.query, 80)
FROM pg_stat_activity a
JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE a.pid = ANY(%s)
ORDER BY 1, 3
"""


@dataclass(frozen=True)
class LockWait:
    pid: int  # the waiting backend
    relation: str  # e.g. letta.runs
    blocker_pid: int
    blocker_state: str | None
    blocker_query: str | None

    def describe(self) -> str:
        what = f" ({self.blocker_state}: {self.blocker_query})" if self.blocker_query else ""
        return f"waiting for a lock on {self.relation} held by pid {self.blocker_pid}{what}"


def lock_waits(conn: psycopg.Connection, pids: Iterable[int]) -> list[LockWait]:
    """The lock waits of ``pids`` right now, one per (waiter, blocker)."""
    rows = conn.execute(_WAITS, (list(pids),)).fetchall()
    return [
        LockWait(int(r[0]), str(r[1]), int(r[2]), r[3], " ".join(str(r[4] or "").split()) or None)
        for r in rows
    ]


class LockWaitWatcher:
    """``with LockWaitWatcher(dsn, pids, on_wait):`` calls ``on_wait(wait)`` once per new wait of one
    of ``pids()`` (a callable: workers come and go). Never raises into the watched work: a failing
    poll ends the watching quietly."""

    def __init__(
        self,
        dsn: str,
        pids: Callable[[], Iterable[int]],
        on_wait: Callable[[LockWait], None],
        interval: float = 1.0,
    ) -> None:
        self._dsn, self._pids, self._on_wait, self._interval = dsn, pids, on_wait, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lifeboat-lock-waits", daemon=True)

    def __enter__(self) -> LockWaitWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        seen: set[tuple[int, str, int]] = set()
        try:
            with connect(self._dsn) as conn:
                while not self._stop.wait(self._interval):
                    for wait in lock_waits(conn, self._pids()):
                        key = (wait.pid, wait.relation, wait.blocker_pid)
                        if key not in seen:
                            seen.add(key)
                            self._on_wait(wait)
        except Exception:
            return
