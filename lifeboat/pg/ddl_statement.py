"""One DDL statement: its SQL, the tables it locks and the roles it needs, and how it is executed.

Restore sections (:mod:`lifeboat.pg.ddl`, :mod:`lifeboat.pg.ddl_post`) produce
:class:`Statement` s; the scheduler (:mod:`lifeboat.pg.parallel`) orders them by their locks and
``after`` keys; :func:`execute_one` runs one query so that the server refuses a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

Query = sql.SQL | sql.Composed  # what Connection.execute accepts


@dataclass(frozen=True)
class Statement:
    """One DDL statement, with what a scheduler and a role check need to know about it.

    ``then`` are statements that must follow it on the same connection (an object's comment
    after its creation); each is executed on its own, never joined into one string.
    """

    sql: Query
    then: tuple[Query, ...] = ()
    exclusive_locks: frozenset[str] = frozenset()
    shared_locks: frozenset[str] = frozenset()
    roles: frozenset[str] = field(default_factory=frozenset)
    key: str = ""  # names the statement for ``after`` of others (post-data)
    after: frozenset[str] = frozenset()  # keys that must have run first (missing keys are ignored)

    def text(self) -> str:
        return self.sql.as_string()

    def queries(self) -> Sequence[Query]:
        return (self.sql, *self.then)

    def conflicts_with(self, other: Statement) -> bool:
        return bool(
            self.exclusive_locks & (other.exclusive_locks | other.shared_locks)
            or other.exclusive_locks & self.shared_locks
        )


def roles(*names: str | None) -> frozenset[str]:
    return frozenset(name for name in names if name)


def execute_one(conn: psycopg.Connection, query: Query) -> None:
    """Run exactly one statement: the extended query protocol makes the server refuse a second one
    (the simple protocol, which psycopg uses for a query without parameters, would run them all)."""
    conn.execute(query, prepare=False, binary=True)


def execute_statement_queries(conn: psycopg.Connection, statement: Statement) -> None:
    for query in statement.queries():
        execute_one(conn, query)
