"""One consistent instant of a live database, shared by N worker connections.

A REPEATABLE READ, READ ONLY transaction exports its snapshot (``pg_export_snapshot()``);
each worker opens its own transaction with ``SET TRANSACTION SNAPSHOT`` so every table read by
any worker shows the database as it was at that one instant, while writers keep going. The
exporting transaction stays open for the life of the :class:`SharedSnapshot` (a snapshot can
only be imported while its exporter is alive), and answers queries in the same snapshot.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from lifeboat.errors import DatabaseError
from lifeboat.pg.connect import connect, describe_target, one_line
from lifeboat.pg.models import QualifiedName
from lifeboat.pg.parallel import run_on_connections

T = TypeVar("T")
R = TypeVar("R")

_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# The snapshot's statements, the exporter's and the workers', are planned without parallel
# workers, for their transactions. They already run one statement per connection, one connection
# per core lifeboat is given (--jobs) plus the exporter's: a parallel plan there only hands rows
# between processes competing for the same cores, and takes its processes from the pool
# (max_parallel_workers) the live server's own queries share. Measured (BENCHMARKS.md, session 12):
# an incremental backup 1.220 -> 1.115 s, 0.1 CPU s less on the server (its change scans); the scan
# of ``runs`` for the runs in flight 38 ms on 3 processes -> 35 ms on one; a full backup unchanged.
_SERIAL_PLANS = "pg_catalog.set_config('max_parallel_workers_per_gather', '0', true)"


class SharedSnapshot:
    """``with SharedSnapshot(dsn) as snap:`` then ``snap.map(copy_table, tables, jobs=4)``.

    ``lock`` takes ACCESS SHARE locks on those tables *before* the snapshot is taken (as
    pg_dump does): concurrent DDL that would change them waits for the backup instead of
    slipping in between the snapshot and the copy. ``lock_timeout`` bounds that wait.
    """

    def __init__(self, dsn: str, *, lock: Sequence[QualifiedName] = (), lock_timeout: str = "30s") -> None:
        self.dsn = dsn
        self._lock_tables = list(lock)
        self._lock_timeout = lock_timeout
        self._conn: psycopg.Connection | None = None
        self._conn_lock = threading.Lock()
        self.snapshot_id: str = ""
        self.worker_pids: list[int] = []  # backends of the workers opened so far (lock-wait reports)
        self._opening: list[_Opening] = []  # workers being opened ahead of ``map``
        self._opening_lock = threading.Lock()

    def backend_pids(self) -> list[int]:
        """The exporting connection's backend and every worker's (for lock-wait reports)."""
        exporting = [self._conn.info.backend_pid] if self._conn is not None else []
        return exporting + list(self.worker_pids)

    # -- exporting transaction -----------------------------------------------------------------
    def __enter__(self) -> SharedSnapshot:
        self._conn = connect(self.dsn)
        try:
            self._conn.execute(_BEGIN)
            if self._lock_tables:
                self._take_locks(self._conn)
            row = self._conn.execute(f"SELECT pg_catalog.pg_export_snapshot(), {_SERIAL_PLANS}").fetchone()
            assert row is not None
            self.snapshot_id = row[0]
        except psycopg.Error as exc:
            self._conn.close()
            raise DatabaseError(
                f"cannot take a snapshot on {describe_target(self.dsn)}: {one_line(exc)}"
            ) from exc
        except BaseException:
            self._conn.close()
            raise
        return self

    def _take_locks(self, conn: psycopg.Connection) -> None:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (self._lock_timeout,))
        tables = sql.SQL(", ").join(table.identifier() for table in self._lock_tables)
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(tables))

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._opening_lock:
            unused, self._opening = self._opening, []
        for opening in unused:
            opening.discard()
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None
        self.snapshot_id = ""

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """The exporting connection itself (serialized between threads); do not end its transaction."""
        if self._conn is None:
            raise DatabaseError("the shared snapshot is not open")
        with self._conn_lock:
            yield self._conn

    def query(self, statement: str | sql.Composable, params: Any = None) -> list[tuple[Any, ...]]:
        """Run a read query in the snapshot (e.g. which runs were in flight at that instant)."""
        with self.connection() as conn:
            try:
                return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]
            except psycopg.Error as exc:
                raise DatabaseError(f"query in snapshot: {one_line(exc)}") from exc

    # -- workers -------------------------------------------------------------------------------
    def open_worker(self) -> psycopg.Connection:
        """A new connection whose open transaction sees exactly the shared snapshot."""
        if not self.snapshot_id:
            raise DatabaseError("the shared snapshot is not open")
        conn = connect(self.dsn)
        self.worker_pids.append(conn.info.backend_pid)
        try:
            conn.execute(_BEGIN)
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot_id)))
            conn.execute(f"SELECT {_SERIAL_PLANS}")
        except psycopg.Error as exc:
            conn.close()
            raise DatabaseError(f"cannot import snapshot {self.snapshot_id}: {one_line(exc)}") from exc
        return conn

    def open_workers_ahead(self, count: int) -> None:
        """Start opening ``count`` workers in the background, for :meth:`map` to take (each
        connection and snapshot import is a few round trips and a server process started: done
        while this thread still works, not when the workers start). Unused ones are closed with
        the snapshot."""
        with self._opening_lock:
            self._opening += [_Opening(self) for _ in range(count)]

    def _next_worker(self) -> psycopg.Connection:
        """A worker opened ahead (its failure raised here), else a new one."""
        with self._opening_lock:
            opening = self._opening.pop(0) if self._opening else None
        return opening.connection() if opening is not None else self.open_worker()

    @contextlib.contextmanager
    def worker(self) -> Iterator[psycopg.Connection]:
        conn = self.open_worker()
        try:
            yield conn
        finally:
            conn.close()

    def map(self, work: Callable[[psycopg.Connection, T], R], items: Sequence[T], jobs: int) -> list[R]:
        """``work(conn, item)`` for every item on ``jobs`` worker connections, all in the snapshot.

        Items start in the given order (pass tables biggest first); results come back in
        item order. The first failure stops new items from starting and is re-raised.
        """
        return run_on_connections(self._next_worker, items, work, jobs)


class _Opening:
    """One worker connection being opened on its own thread."""

    def __init__(self, snap: SharedSnapshot) -> None:
        self._conn: psycopg.Connection | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._open, args=(snap,), name="lifeboat-open-worker", daemon=True
        )
        self._thread.start()

    def _open(self, snap: SharedSnapshot) -> None:
        try:
            self._conn = snap.open_worker()
        except BaseException as exc:  # raised to whoever takes the connection
            self._error = exc

    def connection(self) -> psycopg.Connection:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._conn is not None
        return self._conn

    def discard(self) -> None:
        self._thread.join()
        if self._conn is not None:
            self._conn.close()
