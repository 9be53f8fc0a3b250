"""Which rows changed since an earlier backup, from PostgreSQL's own transaction ids.

A logical backup has no change log, but every row version carries ``xmin``, the id of the
transaction that wrote it. An earlier backup records a :class:`ChangeToken` taken inside its
snapshot: the snapshot's ``xmin`` (every transaction below it had ended when the snapshot was
taken, so a committed row version written by one of them was in that backup) and what
identifies the database's transaction-id history (system identifier, WAL timeline, database
oid). A later backup inside its own snapshot then asks, per table and per key, how many rows
there are and whether any row version is *not older* than that ``xmin`` — written, updated or
reinserted since, or possibly so (a transaction that was still running counts as a change).

The test errs on the side of "changed": a row version older than 2**31 transactions (frozen,
its raw ``xmin`` wrapped around) compares as new, so it is read again; never the other way.
What a transaction id cannot show — deleted rows — the per-key row counts show.

It relies on transaction ids never being reused for this database between the two backups.
The token changes (and nothing is trusted) when the cluster is another one (system
identifier), when it was restored to a point in time or a standby was promoted (timeline), when
the database was recreated (oid), when ids went backwards, or when they moved so far that
32-bit comparisons could wrap. A data directory copied back from a file-system snapshot
without a timeline change is not detected: back up with ``--full`` after such a rollback
(docs/DESIGN.md, "Incremental backup").
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from lifeboat.pg.connect import database_errors
from lifeboat.pg.models import QualifiedName

# Session settings that change how COPY TEXT prints a value; a change means stored rows would
# no longer be byte-identical to what a fresh read prints.
OUTPUT_SETTINGS = (
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "extra_float_digits",
    "bytea_output",
    "client_encoding",
    "lc_monetary",
    "standard_conforming_strings",
)

# Trust ids only well inside the 2**31 window in which PostgreSQL compares 32-bit ids.
MAX_XID_DISTANCE = 2**31 - 2**26


@dataclass(frozen=True)
class ChangeToken:
    """Where a snapshot stands in its database's transaction history (see the module docstring)."""

    system_identifier: str
    timeline: int
    database_oid: int
    xmin: int  # the snapshot's xmin as a 64-bit (epoch-extended) transaction id
    xmax: int  # the snapshot's xmax (next id to be assigned), 64-bit
    lsn: str  # the WAL insert position, for a rollback that has not yet caught up
    settings: dict[str, str]
    # "schema.table" -> digest of the table's oid and physical column list (attnum, name, type,
    # typmod, collation, dropped, fast default): a column dropped and added again under the same
    # name and type rewrites no row, yet every row prints differently.
    tables: dict[str, str] = field(default_factory=dict)

    def to_document(self) -> dict[str, object]:
        return {
            "system_identifier": self.system_identifier,
            "timeline": self.timeline,
            "database_oid": self.database_oid,
            "xmin": self.xmin,
            "xmax": self.xmax,
            "lsn": self.lsn,
            "settings": dict(self.settings),
            "tables": dict(self.tables),
        }

    @classmethod
    def from_document(cls, value: object) -> ChangeToken | None:
        """The token a manifest recorded, or None when it has none or it is malformed."""
        if not isinstance(value, dict):
            return None
        try:
            settings, tables = value["settings"], value.get("tables", {})
            if not isinstance(settings, dict) or not isinstance(tables, dict):
                return None
            return cls(
                system_identifier=str(value["system_identifier"]),
                timeline=int(value["timeline"]),
                database_oid=int(value["database_oid"]),
                xmin=int(value["xmin"]),
                xmax=int(value["xmax"]),
                lsn=str(value["lsn"]),
                settings={str(k): str(v) for k, v in settings.items()},
                tables={str(k): str(v) for k, v in tables.items()},
            )
        except (KeyError, TypeError, ValueError):
            return None

    def why_not_after(self, earlier: ChangeToken) -> str | None:
        """None when rows older than ``earlier.xmin`` are provably unchanged since; else why not."""
        if (self.system_identifier, self.database_oid) != (earlier.system_identifier, earlier.database_oid):
            return "another database"
        if self.timeline != earlier.timeline:
            return "the server's timeline changed (point-in-time recovery or failover)"
        if self.xmin < earlier.xmin or _lsn(self.lsn) < _lsn(earlier.lsn):
            return "the server's history went backwards"
        if self.xmax - earlier.xmin >= MAX_XID_DISTANCE:
            return "too many transactions since"
        if self.settings != earlier.settings:
            return "output settings changed"
        return None


def _lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low or "0", 16)


# One row per ordinary table of the database: its name as "schema.table" and a digest of what
# decides how its rows print besides their own bytes (see ChangeToken.tables).
_TABLE_LAYOUTS = """
SELECT n.nspname || '.' || c.relname,
       md5(c.oid::text || '|' || string_agg(
           a.attnum || ':' || a.attname || ':' || a.atttypid || ':' || a.atttypmod || ':'
           || a.attcollation || ':' || a.attisdropped || ':' || a.atthasmissing, ',' ORDER BY a.attnum))
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relkind = 'r'
 GROUP BY n.nspname, c.relname, c.oid
"""


def read_change_token(conn: psycopg.Connection) -> ChangeToken | None:
    """The token of the snapshot ``conn``'s transaction sees; None where it cannot be read
    (a standby, or a role not allowed to read the control data): then every backup reads all."""
    names = sql.SQL(", ").join(
        sql.SQL("current_setting({})").format(sql.Literal(name)) for name in OUTPUT_SETTINGS
    )
    query = sql.SQL(
        "SELECT (SELECT system_identifier::text FROM pg_catalog.pg_control_system()),"
        " ('x' || substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int,"
        " (SELECT oid::int FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()),"
        " pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text,"
        " pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text,"
        " pg_catalog.pg_current_wal_lsn()::text, {}"
    ).format(names)
    try:
        with conn.transaction():  # a savepoint: a refused function must not end the snapshot
            if conn.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone() != (False,):
                return None
            row = conn.execute(query).fetchone()
            tables = {name: digest for name, digest in conn.execute(_TABLE_LAYOUTS).fetchall()}
    except psycopg.Error:
        return None
    if row is None or any(value is None for value in row):
        return None
    system_identifier, timeline, oid, xmin, xmax, lsn, *settings = row
    return ChangeToken(
        system_identifier, int(timeline), int(oid), int(xmin), int(xmax), str(lsn),
        dict(zip(OUTPUT_SETTINGS, (str(value) for value in settings), strict=True)), tables,
    )  # fmt: skip


class KeyCount(NamedTuple):
    """The rows of one key value now: how many, and whether any may have changed. (A named
    tuple: a scan returns one per key, 5,000 and more per table, and a frozen dataclass's
    constructor cost ~3x as much.)"""

    key: str
    rows: int
    changed: bool


# Transaction ids a change test lists at most; more are compared by age, which PostgreSQL
# evaluates in the leader only (``age`` is parallel restricted). Both cost about the same a row in
# a serial scan, which is how a backup's workers plan (lifeboat.pg.snapshot).
# (An array literal in the statement, ~7 bytes an id: parameters would make every '%' in the
# statement's names a placeholder.)
MAX_LISTED_XIDS = 10_000


def _changed_expression(
    since: ChangeToken, now: ChangeToken | None, max_listed: int = MAX_LISTED_XIDS
) -> sql.Composable:
    """True for a row version written at or after ``since.xmin``.

    With ``now`` (the current snapshot's token) and few ids since: ``xmin`` is one of the ids
    from ``since.xmin`` up to ``now.xmax`` — every id a row version visible now and not older
    than ``since.xmin`` can carry, as 32-bit ids (an older frozen row whose raw id wrapped onto
    one of them counts as changed: read again, never the other way). One hash lookup a row,
    parallel safe. Otherwise compared as 32-bit ids by their distance from now, which the
    token's bounds keep well inside the window."""
    if now is not None and 0 <= now.xmax - since.xmin <= max_listed:
        return sql.SQL("xmin = ANY({}::xid[])").format(sql.Literal(_xid_array(since.xmin, now.xmax)))
    xid32 = since.xmin % 2**32
    return sql.SQL("pg_catalog.age(xmin) <= pg_catalog.age({}::text::xid)").format(sql.Literal(str(xid32)))


@functools.lru_cache(maxsize=4)
def _xid_array(first: int, end: int) -> str:
    """The array literal of the 32-bit ids from ``first`` up to ``end`` (64-bit, end excluded):
    built once for every table of a backup (thousands of ids, ~0.5 ms each time)."""
    return "{" + ",".join(str(xid % 2**32) for xid in range(first, end)) + "}"


# More distinct keys than this (a table keyed by a unique id with millions of rows) would cost
# more memory than the per-key plan saves: such a table is only kept or read whole.
MAX_KEYS = 500_000


def key_counts(
    conn: psycopg.Connection,
    table: QualifiedName,
    key: str,
    since: ChangeToken,
    *,
    now: ChangeToken | None = None,
    max_keys: int = MAX_KEYS,
) -> list[KeyCount] | None:
    """Every value of ``key`` in ``table`` in the order the table's stream uses, with its row count
    and whether any of its rows changed since ``since`` (``now``: the token of the snapshot
    ``conn`` reads, see :func:`_changed_expression`); None when a key is NULL (its rows have no
    place in a key range) or there are more than ``max_keys`` keys."""
    query = sql.SQL(
        "SELECT {key}::text, count(*), bool_or({changed}) FROM {table} GROUP BY {key} ORDER BY {key} LIMIT {limit}"
    ).format(
        key=sql.Identifier(key),
        changed=_changed_expression(since, now),
        table=table.identifier(),
        limit=sql.Literal(max_keys + 1),
    )
    rows = _fetch(conn, query, table)
    if len(rows) > max_keys or any(value is None for value, _count, _changed in rows):
        return None
    return list(map(KeyCount._make, rows))  # (text, bigint, bool): already str, int, bool


def table_count(
    conn: psycopg.Connection, table: QualifiedName, since: ChangeToken, *, now: ChangeToken | None = None
) -> tuple[int, bool]:
    """(rows, whether any changed since ``since``) of a table streamed without a key."""
    query = sql.SQL("SELECT count(*), coalesce(bool_or({changed}), false) FROM {table}").format(
        changed=_changed_expression(since, now), table=table.identifier()
    )
    ((count, changed),) = _fetch(conn, query, table)
    return int(count), bool(changed)


@contextlib.contextmanager
def sorts_avoided(conn: psycopg.Connection) -> Iterator[None]:
    """Within: the planner avoids a sort where an index gives the order (``enable_sort`` off for
    the transaction, then as it was). For an incremental backup's read of a few keys' rows in
    key order: the keys' rows found by a scan of an index on (key, ...) as listed, then sorted,
    was chosen over the index whose order is the ORDER BY (``messages``, 28,000 rows of 50
    agents, sorted in a temporary file: 106-118 ms against 46-67 ms). It changes plans, never
    results; a read with no such index is sorted as before."""
    with database_errors("setting up the read of what changed"):
        (previous,) = conn.execute("SELECT pg_catalog.current_setting('enable_sort')").fetchone() or ("on",)
        conn.execute("SELECT pg_catalog.set_config('enable_sort', 'off', true)")
    try:
        yield
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:  # not after a failure
            with database_errors("restoring the planner settings"):
                conn.execute("SELECT pg_catalog.set_config('enable_sort', %s, true)", (previous,))


def _fetch(conn: psycopg.Connection, query: sql.Composed, table: QualifiedName) -> Sequence[tuple[Any, ...]]:
    with database_errors(f"reading what changed in {table}"):
        return conn.execute(query).fetchall()
