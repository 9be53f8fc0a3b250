"""Writing rows into existing tables: COPY of text-format lines, upsert from a staging table, and
ordering tables so parents come before children.

These are the generic pieces of a partial restore (a few rows into a live database, inside one
transaction); what the rows are and which tables they go to is decided by the caller.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import LifeboatError
from lifeboat.pg import copybinary

COPY_BATCH_BYTES = 1 << 20


def copy_lines(
    conn: psycopg.Connection[Any],
    table: sql.Composable,
    columns: Sequence[str],
    lines: Iterable[bytes],
    *,
    binary: bool = False,
) -> None:
    """``COPY table (columns) FROM STDIN`` of text-format lines (each ends with a newline), or of
    binary COPY tuples with ``binary`` (header and trailer added here), sent in batches of about a
    mebibyte."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    options = sql.SQL(" (FORMAT binary)") if binary else sql.SQL("")
    statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(table, names, options)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        batch: list[bytes] = [copybinary.HEADER] if binary else []
        if binary:
            lines = itertools.chain(lines, [copybinary.TRAILER])
        size = 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= COPY_BATCH_BYTES:
                copy.write(b"".join(batch))
                batch, size = [], 0
        if batch:
            copy.write(b"".join(batch))


def upsert(
    conn: psycopg.Connection[Any],
    target: sql.Composable,
    source: sql.Composable,
    columns: Sequence[str],
    key: Sequence[str],
    *,
    null_columns: Iterable[str] = (),
) -> int:
    """Insert every row of ``source`` into ``target`` (same column names); a row whose ``key``
    already exists is updated, and only when it differs. ``null_columns`` are written as NULL.

    Returns the number of rows inserted or changed (unchanged rows do not count). Without a
    ``key`` the rows are simply inserted."""
    nulls = set(null_columns)
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    values = sql.SQL(", ").join(
        sql.SQL("NULL") if c in nulls else sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns
    )
    insert = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} s").format(target, names, values, source)
    if key:
        others = [c for c in columns if c not in key]
        conflict = sql.SQL(", ").join(sql.Identifier(c) for c in key)
        if others:
            sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others)
            insert += sql.SQL(
                " ON CONFLICT ({}) DO UPDATE SET {} WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text"
            ).format(conflict, sets)
        else:
            insert += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(conflict)
    return conn.execute(insert).rowcount


def topological(tables: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """``tables`` ordered parents first, given ``(child, parent)`` edges (foreign keys). Edges to
    tables not listed and self-references are ignored; tables that are ready together come in
    name order. A cycle raises :class:`LifeboatError`."""
    present = set(tables)
    parents: dict[str, set[str]] = {table: set() for table in present}
    for child, parent in edges:
        if child in present and parent in present and child != parent:
            parents[child].add(parent)
    ordered: list[str] = []
    remaining = sorted(present)
    while remaining:
        ready = [t for t in remaining if parents[t] <= set(ordered)]
        if not ready:
            raise LifeboatError(f"foreign-key cycle among {', '.join(remaining)}")
        ordered.extend(ready)
        remaining = [t for t in remaining if t not in ready]
    return ordered
