"""Opening connections with one-line errors, and what the server tells us about itself."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import conninfo

from lifeboat.errors import DatabaseError

APPLICATION_NAME = "lifeboat"
CONNECT_TIMEOUT_SECONDS = 10

# Long operations (COPY of a big table, index builds, a snapshot held open for the whole
# backup) must not be cut by server-side defaults an operator configured for the role.
_SESSION_SETTINGS = {
    "statement_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "lock_timeout": "0",
}
_SESSION_SETTINGS_17 = {"transaction_timeout": "0"}  # PostgreSQL 17+
# PostgreSQL 18 reads ahead through a pool of I/O worker processes that every session shares
# (``io_method = worker``, its default). lifeboat's reads are bulk scans (a backup's change scans
# and COPYs, a restore's index builds): with ``effective_io_concurrency = 0`` they read in their
# own backend, as every release before 18 did (the kernel's readahead still works ahead of a
# sequential scan), and leave the shared workers to the Letta server's queries. Measured on the
# 5,000-agent benchmark with its data in the page cache: full backup 8.42 -> 7.75 s (server CPU
# 6.4 -> 5.8 s), incremental 1.22 -> 1.15 s, full restore 13.6 -> 12.8 s (BENCHMARKS.md, session
# 11). With io_uring, or before 18, nothing is changed.
_SESSION_SETTINGS_18_WORKER = {"effective_io_concurrency": "0"}

_SERVER_PREFIX = re.compile(
    r'^(connection failed: )?(connection to server (at|on) "[^"]*"( \([^)]*\))?, port \d+ failed: )?'
)


def describe_target(dsn: str) -> str:
    """``user@host:port/db`` of a DSN, without the password, for messages."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable connection string>"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "")
    dbname = str(params.get("dbname") or user)
    return f"{user + '@' if user else ''}{host}:{port}/{dbname}"


def one_line(error: BaseException) -> str:
    """psycopg messages span lines (hints, libpq per-host details); operators want one."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(error)
    parts = [part.strip() for part in str(text).splitlines() if part.strip()]
    message = "; ".join(_SERVER_PREFIX.sub("", part) for part in parts)
    return message or type(error).__name__


def with_database(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return conninfo.make_conninfo(dsn, dbname=dbname)


def connect(
    dsn: str, *, autocommit: bool = True, application_name: str = APPLICATION_NAME
) -> psycopg.Connection:
    """Open a connection; any failure becomes a one-line :class:`DatabaseError`.

    Autocommit by default: lifeboat issues its own ``BEGIN`` where a transaction matters
    (snapshots, DDL sections), which keeps the transaction boundaries visible in the code.
    """
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {describe_target(dsn)}: {one_line(exc)}"
        ) from None
    try:
        settings = dict(_SESSION_SETTINGS)
        if conn.info.server_version >= 170000:
            settings.update(_SESSION_SETTINGS_17)
        calls = ["set_config(%s, %s, false)"] * len(settings)
        params = [item for pair in settings.items() for item in pair]
        if conn.info.server_version >= 180000:
            for name, value in _SESSION_SETTINGS_18_WORKER.items():
                calls.append(
                    "CASE WHEN current_setting('io_method') = 'worker' THEN set_config(%s, %s, false) END"
                )
                params += [name, value]
        conn.execute(f"SELECT {', '.join(calls)}", params)
        if not autocommit:
            conn.commit()
    except psycopg.Error as exc:
        conn.close()
        raise DatabaseError(f"cannot prepare session on {describe_target(dsn)}: {one_line(exc)}") from None
    return conn


@contextlib.contextmanager
def connection(dsn: str, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
    """``with connection(dsn) as conn:`` — closes the connection, translates errors."""
    conn = connect(dsn, autocommit=autocommit)
    try:
        with database_errors(f"on {describe_target(dsn)}"):
            yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def database_errors(context: str) -> Iterator[None]:
    """Turn any psycopg error raised inside into a one-line :class:`DatabaseError`."""
    try:
        yield
    except psycopg.Error as exc:
        raise DatabaseError(f"{context}: {one_line(exc)}") from exc


@dataclass(frozen=True)
class ServerInfo:
    version_num: int  # e.g. 160004
    version: str  # e.g. "16.4"
    database: str
    user: str
    is_superuser: bool
    can_create_db: bool

    @property
    def major(self) -> int:
        return self.version_num // 10000


def server_info(conn: psycopg.Connection) -> ServerInfo:
    row = conn.execute(
        """
        SELECT current_setting('server_version_num')::int, current_setting('server_version'),
               current_database(), current_user, r.rolsuper, r.rolcreatedb
        FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
        """
    ).fetchone()
    assert row is not None
    return ServerInfo(int(row[0]), str(row[1]).split()[0], row[2], row[3], bool(row[4]), bool(row[5]))


_UTC_ZONES = frozenset(
    name.lower()
    for name in ("UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
                 "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0",
                 "Greenwich", "Etc/Greenwich")
)  # fmt: skip


def prints_utc_iso(conn: psycopg.Connection) -> bool:
    """Whether the session prints timestamps in ISO style and in UTC (``2026-12-03 23:29:10+00``)."""
    row = conn.execute("SELECT current_setting('DateStyle'), current_setting('TimeZone')").fetchone()
    assert row is not None
    return str(row[0]).upper().startswith("ISO") and str(row[1]).lower() in _UTC_ZONES


def role_exists(conn: psycopg.Connection, role: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone()
    return row is not None


def existing_roles(conn: psycopg.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT rolname FROM pg_catalog.pg_roles")}
