"""Run work on N connections at once, one thread per connection.

psycopg releases the GIL while it waits on the server, so threads are enough to keep N
backends busy. Items start in the order given, as soon as (a) the items they come ``after``
are done and (b) they do not conflict with a running item: two statements taking table locks in
opposite orders (a foreign key each way between two tables) would deadlock, and a statement
waiting on a lock held by another wastes a connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

import psycopg

from lifeboat.errors import DatabaseError
from lifeboat.pg.connect import connect, describe_target, one_line
from lifeboat.pg.ddl_statement import Statement, execute_statement_queries  # not pg.ddl: no SQL parser

T = TypeVar("T")
R = TypeVar("R")


def run_on_connections(
    open_connection: Callable[[], psycopg.Connection],
    items: Sequence[T],
    work: Callable[[psycopg.Connection, T], R],
    jobs: int,
    *,
    conflicts: Callable[[T, T], bool] | None = None,
    key: Callable[[T], str] | None = None,
    after: Callable[[T], Iterable[str]] | None = None,
) -> list[R]:
    """Apply ``work(conn, item)`` to every item on ``jobs`` threads, each with its own connection.

    Items start in the given order (sort biggest first for the best makespan), skipping over
    items that ``conflicts`` with a running one or whose ``after`` keys (other items' ``key``)
    are not done yet; keys that name no item are ignored. Returns results in item order. The
    first failure stops new items from starting and is re-raised once running ones end.
    """
    if not items:
        return []
    queue = _Scheduler(list(items), conflicts, key, after)
    results: dict[int, R] = {}
    connections: list[psycopg.Connection] = []

    def worker() -> None:
        try:
            conn = open_connection()
        except BaseException as exc:
            queue.fail(exc)
            return
        connections.append(conn)
        try:
            while (picked := queue.take()) is not None:
                index, item = picked
                try:
                    results[index] = work(conn, item)
                except BaseException as exc:
                    queue.fail(exc)
                finally:
                    queue.done(index)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(jobs, len(items))))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException as exc:  # an interruption (signal) of this thread: stop the workers first
        _stop_workers(queue, exc, connections, threads)
        raise
    if queue.error is not None:
        raise queue.error
    return [results[index] for index in range(len(items))]


def _stop_workers(
    queue: _Scheduler[T],
    error: BaseException,
    connections: list[psycopg.Connection],
    threads: list[threading.Thread],
) -> None:
    """No new item starts, running statements are cancelled, and every worker has ended on return.

    Without this, workers would keep writing (into a database about to be dropped, into a
    repository whose lock is being released) while the caller cleans up.
    """
    queue.fail(error)
    for conn in list(connections):
        with contextlib.suppress(Exception):
            conn.cancel_safe(timeout=5)
    for thread in threads:
        thread.join()


class _Scheduler(Generic[T]):
    def __init__(
        self,
        items: list[T],
        conflicts: Callable[[T, T], bool] | None,
        key: Callable[[T], str] | None,
        after: Callable[[T], Iterable[str]] | None,
    ) -> None:
        self._pending = list(enumerate(items))
        self._running: dict[int, T] = {}
        self._conflicts = conflicts
        keys = [key(item) if key else "" for item in items]
        known = {k for k in keys if k}
        self._key_of = dict(enumerate(keys))
        self._waits_for = {
            index: {k for k in (after(item) if after else ()) if k in known}
            for index, item in enumerate(items)
        }
        self._outstanding = {k: keys.count(k) for k in known}  # several items may share a key
        self._condition = threading.Condition()
        self.error: BaseException | None = None

    def _ready(self, index: int, item: T) -> bool:
        if any(self._outstanding[k] for k in self._waits_for[index]):
            return False
        conflicts = self._conflicts
        return not conflicts or not any(conflicts(item, busy) for busy in self._running.values())

    def take(self) -> tuple[int, T] | None:
        with self._condition:
            while True:
                if self.error is not None or not self._pending:
                    return None
                for position, (index, item) in enumerate(self._pending):
                    if self._ready(index, item):
                        del self._pending[position]
                        self._running[index] = item
                        return index, item
                if not self._running:  # nothing can ever become ready: a cycle in ``after``
                    self.error = DatabaseError("internal error: circular ordering between scheduled items")
                    self._condition.notify_all()
                    return None
                self._condition.wait()

    def done(self, index: int) -> None:
        with self._condition:
            self._running.pop(index, None)
            if self._key_of[index]:
                self._outstanding[self._key_of[index]] -= 1
            self._condition.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._condition:
            if self.error is None:
                self.error = error
            self._condition.notify_all()


def run_statements(
    dsn: str, statements: Sequence[Statement], jobs: int, *, session_sql: Sequence[str] = ()
) -> None:
    """Execute DDL statements on ``jobs`` autocommit connections to ``dsn``, honouring ``after``."""

    def open_connection() -> psycopg.Connection:
        conn = connect(dsn)
        for setting in session_sql:
            conn.execute(setting)
        return conn

    run_on_connections(
        open_connection,
        statements,
        lambda conn, statement: execute_statement(conn, statement, dsn),
        jobs,
        conflicts=Statement.conflicts_with,
        key=lambda statement: statement.key,
        after=lambda statement: statement.after,
    )


def execute_statement(conn: psycopg.Connection, statement: Statement, dsn: str = "") -> None:
    try:
        execute_statement_queries(conn, statement)
    except psycopg.Error as exc:
        where = f"on {describe_target(dsn)}: " if dsn else ""
        raise DatabaseError(f"{where}{one_line(exc)} (while running: {statement.text()[:300]})") from exc
