"""Run work on N connections at once, one thread per connection.

psycopg releases the GIL while it waits on the server, so threads are enough to keep N
backends busy. The scheduler never runs two statements whose table locks conflict at the same
time: two foreign keys between the same tables taken in opposite orders would deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import psycopg

from lifeboat.errors import DatabaseError
from lifeboat.pg.connect import connect, describe_target, one_line
from lifeboat.pg.ddl import Statement

T = TypeVar("T")
R = TypeVar("R")


def run_on_connections(
    open_connection: Callable[[], psycopg.Connection],
    items: Sequence[T],
    work: Callable[[psycopg.Connection, T], R],
    jobs: int,
    *,
    conflicts: Callable[[T, T], bool] | None = None,
) -> list[R]:
    """Apply ``work(conn, item)`` to every item on ``jobs`` threads, each with its own connection.

    Items are started in the given order (sort biggest first for the best makespan), skipping
    over items that ``conflicts`` with one currently running. Returns results in item order.
    The first failure stops new items from starting and is re-raised once running ones end.
    """
    if not items:
        return []
    queue = _ConflictQueue(list(items), conflicts)
    results: dict[int, R] = {}

    def worker() -> None:
        try:
            conn = open_connection()
        except BaseException as exc:
            queue.fail(exc)
            return
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
    for thread in threads:
        thread.join()
    if queue.error is not None:
        raise queue.error
    return [results[index] for index in range(len(items))]


class _ConflictQueue(Generic[T]):
    def __init__(self, items: list[T], conflicts: Callable[[T, T], bool] | None) -> None:
        self._pending = list(enumerate(items))
        self._running: dict[int, T] = {}
        self._conflicts = conflicts
        self._condition = threading.Condition()
        self.error: BaseException | None = None

    def take(self) -> tuple[int, T] | None:
        with self._condition:
            while True:
                if self.error is not None or not self._pending:
                    return None
                for position, (index, item) in enumerate(self._pending):
                    if not self._conflicts or not any(
                        self._conflicts(item, busy) for busy in self._running.values()
                    ):
                        del self._pending[position]
                        self._running[index] = item
                        return index, item
                self._condition.wait()

    def done(self, index: int) -> None:
        with self._condition:
            self._running.pop(index, None)
            self._condition.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._condition:
            if self.error is None:
                self.error = error
            self._condition.notify_all()


def run_statements(
    dsn: str, statements: Sequence[Statement], jobs: int, *, session_sql: Sequence[str] = ()
) -> None:
    """Execute independent DDL statements on ``jobs`` autocommit connections to ``dsn``."""

    def open_connection() -> psycopg.Connection:
        conn = connect(dsn)
        for setting in session_sql:
            conn.execute(setting)
        return conn

    def execute(conn: psycopg.Connection, statement: Statement) -> None:
        try:
            conn.execute(statement.sql)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"on {describe_target(dsn)}: {one_line(exc)} (while running: {statement.text()[:200]})"
            ) from exc

    run_on_connections(open_connection, statements, execute, jobs, conflicts=Statement.conflicts_with)
