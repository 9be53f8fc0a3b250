"""Database management for restores: create, rename, drop, terminate backends.

Every function takes an autocommit connection to *another* database of the same server
(usually ``postgres``) as a role allowed to do it (superuser or CREATEDB + owner).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from lifeboat.errors import DatabaseError
from lifeboat.pg.connect import one_line

MAX_IDENTIFIER_BYTES = 63


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone()
        is not None
    )


_STAMP_AND_TOKEN = "_YYYYmmddHHMMSS_xxxxxx"  # the shape of what follows the prefix


def temporary_name_prefix(base: str, purpose: str = "restore") -> str:
    """What every :func:`temporary_database_name` of ``base`` and ``purpose`` starts with."""
    marker = f"_lifeboat_{purpose}"
    room = MAX_IDENTIFIER_BYTES - len((marker + _STAMP_AND_TOKEN).encode())
    return base.encode()[:room].decode(errors="ignore") + marker + "_"


def temporary_database_name(base: str, purpose: str = "restore") -> str:
    """A fresh name like ``letta_lifeboat_restore_20240102030405_a1b2c3`` that fits in 63 bytes."""
    return f"{temporary_name_prefix(base, purpose)}{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"


def create_database(
    conn: psycopg.Connection,
    name: str,
    *,
    owner: str | None = None,
    template: str = "template0",
    encoding: str | None = "UTF8",
    locale: str | None = None,
) -> None:
    """CREATE DATABASE from ``template0`` (so nothing a DBA put in template1 leaks in)."""
    parts: list[sql.Composable] = [sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))]
    if owner:
        parts.append(sql.SQL("OWNER {}").format(sql.Identifier(owner)))
    parts.append(sql.SQL("TEMPLATE {}").format(sql.Identifier(template)))
    if encoding:
        parts.append(sql.SQL("ENCODING {}").format(sql.Literal(encoding)))
    if locale:
        parts.append(sql.SQL("LOCALE {}").format(sql.Literal(locale)))
    _run(conn, sql.SQL(" ").join(parts), f"create database {name}")


def drop_database(conn: psycopg.Connection, name: str, *, missing_ok: bool = True) -> None:
    """DROP DATABASE ... WITH (FORCE): other sessions on it are terminated (PostgreSQL 13+)."""
    if_exists = sql.SQL("IF EXISTS ") if missing_ok else sql.SQL("")
    statement = sql.SQL("DROP DATABASE {}{} WITH (FORCE)").format(if_exists, sql.Identifier(name))
    _run(conn, statement, f"drop database {name}")


def terminate_backends(conn: psycopg.Connection, name: str) -> int:
    """Terminate every other session connected to database ``name``; returns how many."""
    rows = conn.execute(
        """
        SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
        WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid()
        """,
        (name,),
    ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)


@dataclass(frozen=True)
class Session:
    """A session connected to a database (what ``pg_stat_activity`` says about it)."""

    pid: int
    user: str | None
    application: str
    client: str | None
    state: str | None
    since: str | None  # backend_start, ISO 8601

    def describe(self) -> str:
        origin = f"{self.user or '?'}@{self.client or 'local'}"
        app = f" {self.application!r}" if self.application else ""
        return f"pid {self.pid} ({origin}{app}, {self.state or 'unknown state'})"


def list_sessions(conn: psycopg.Connection, name: str) -> list[Session]:
    """Every other session connected to database ``name`` (the ones :func:`terminate_backends` ends)."""
    rows = conn.execute(
        """
        SELECT pid, usename, coalesce(application_name, ''), host(client_addr), state,
               to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        FROM pg_catalog.pg_stat_activity
        WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'
        ORDER BY backend_start, pid
        """,
        (name,),
    ).fetchall()
    return [Session(*row) for row in rows]


def set_allow_connections(conn: psycopg.Connection, name: str, allow: bool) -> None:
    statement = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
        sql.Identifier(name), sql.SQL("true" if allow else "false")
    )
    _run(conn, statement, f"alter database {name}")


def rename_database(conn: psycopg.Connection, old: str, new: str, *, attempts: int = 5) -> None:
    """ALTER DATABASE old RENAME TO new, after closing every session on ``old``.

    New connections are refused while it happens (ALLOW_CONNECTIONS false) so a client that
    reconnects in a loop (a Letta server) cannot win the race; the flag is restored on the
    renamed database.
    """
    set_allow_connections(conn, old, False)
    try:
        for attempt in range(attempts):
            terminate_backends(conn, old)
            try:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
                )
                break
            except psycopg.errors.ObjectInUse as exc:
                if attempt == attempts - 1:
                    raise DatabaseError(f"rename database {old} to {new}: {one_line(exc)}") from exc
                time.sleep(0.2 * (attempt + 1))
            except psycopg.Error as exc:
                raise DatabaseError(f"rename database {old} to {new}: {one_line(exc)}") from exc
    except BaseException:
        with contextlib.suppress(DatabaseError):
            set_allow_connections(conn, old, True)
        raise
    set_allow_connections(conn, new, True)


def swap_databases(
    conn: psycopg.Connection, current: str, replacement: str, parking: str, *, attempts: int = 5
) -> None:
    """Rename ``current`` to ``parking`` and ``replacement`` to ``current`` in ONE transaction.

    ALTER DATABASE ... RENAME is transactional, so there is no instant (and no crash point) at
    which no database carries the name ``current``. Sessions on ``current`` are closed first and
    new ones refused while it happens; the new ``current`` accepts connections afterwards.
    """
    set_allow_connections(conn, current, False)
    try:
        for attempt in range(attempts):
            terminate_backends(conn, current)
            try:
                with conn.transaction():
                    for old, new in ((current, parking), (replacement, current)):
                        conn.execute(
                            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                                sql.Identifier(old), sql.Identifier(new)
                            )
                        )
                break
            except psycopg.errors.ObjectInUse as exc:
                if attempt == attempts - 1:
                    raise DatabaseError(
                        f"swap database {replacement} into {current}: {one_line(exc)}"
                    ) from exc
                time.sleep(0.2 * (attempt + 1))
            except psycopg.Error as exc:
                raise DatabaseError(f"swap database {replacement} into {current}: {one_line(exc)}") from exc
    except BaseException:
        with contextlib.suppress(DatabaseError):
            set_allow_connections(conn, current, True)
        raise
    set_allow_connections(conn, current, True)


def _run(conn: psycopg.Connection, statement: sql.Composed, what: str) -> None:
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        raise DatabaseError(f"{what}: {one_line(exc)}") from exc
