"""COPY streams out of and into tables, in text or binary format.

Text format by default: it is portable across PostgreSQL majors and across type representations
(a ``vector`` or an enum reads back on any server that has the type). Every row is one line
ending in ``b"\\n"``: embedded newlines, tabs and backslashes are escaped by the server, so
splitting on ``b"\\n"`` and ``b"\\t"`` is exact.

``binary=True`` streams binary COPY tuples instead (:mod:`lifeboat.pg.copybinary`): for tables
with ``vector`` columns, whose float-to-text conversion costs the server several times more
than the binary form. Batches then hold tuples only (no header or trailer) and their ends.
"""

from __future__ import annotations

import select
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

import psycopg
from psycopg import sql
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGconn

from lifeboat.errors import DatabaseError
from lifeboat.pg import copybinary
from lifeboat.pg.connect import one_line
from lifeboat.pg.models import QualifiedName, TableDef

DEFAULT_BATCH_BYTES = 1 << 20
NULL_TEXT = b"\\N"

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class CopyBatch:
    """Complete COPY TEXT lines (each ends with ``b"\\n"``), or binary tuples (``ends`` set).

    ``keys`` holds, when asked for, the key column's value of each row in order, as the raw
    COPY text field (``b"\\\\N"`` for NULL; backslash escapes left as the server wrote them).
    """

    data: bytes
    rows: int
    keys: list[bytes] | None = None
    ends: list[int] | None = None  # binary: the end offset of each tuple in ``data``; None: text lines
    # text: the lines without their newlines (``data.split(b"\\n")`` less the last, empty item),
    # split once here for the keys and handed on to the chunker, which would split them again
    lines: list[bytes] | None = None


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Rows whose ``column`` lies strictly between ``after`` and ``before`` (None: unbounded),
    compared by the server (the column's own type and collation, as its ORDER BY sorts)."""

    column: str
    after: str | None = None
    before: str | None = None
    # the values of ``column`` in the range, when the caller knows them all (read in the same
    # snapshot): the condition lists them instead, which the server checks with one hash lookup
    values: tuple[str, ...] | None = None

    def condition(self) -> sql.Composable:
        column = sql.Identifier(self.column)
        if self.values is not None:
            if not self.values:
                return sql.SQL("false")
            return sql.SQL("{} IN ({})").format(column, sql.SQL(", ").join(map(sql.Literal, self.values)))
        parts = [sql.SQL("{} > {}").format(column, sql.Literal(self.after))] if self.after is not None else []
        if self.before is not None:
            parts.append(sql.SQL("{} < {}").format(column, sql.Literal(self.before)))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def copy_out_statement(
    table: QualifiedName,
    columns: Sequence[str],
    order_by: Sequence[str] = (),
    key_ranges: Sequence[KeyRange] = (),
    *,
    binary: bool = False,
) -> sql.Composed:
    """``COPY`` of the columns, sorted by ``order_by``; only rows in one of ``key_ranges`` if any."""
    column_list = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    options = BINARY if binary else sql.SQL("")
    if not order_by and not key_ranges:
        return sql.SQL("COPY {}{} TO STDOUT{}").format(
            table.identifier(), _parenthesized(column_list, columns), options
        )
    conditions = sql.SQL(" OR ").join(
        sql.SQL("({})").format(key_range.condition()) for key_range in key_ranges
    )
    where = sql.SQL(" WHERE {}").format(conditions) if key_ranges else sql.SQL("")
    ordering = sql.SQL(", ").join(sql.Identifier(column) for column in order_by)
    order = sql.SQL(" ORDER BY {}").format(ordering) if order_by else sql.SQL("")
    return sql.SQL("COPY (SELECT {} FROM {}{}{}) TO STDOUT{}").format(
        column_list, table.identifier(), where, order, options
    )


BINARY = sql.SQL(" (FORMAT binary)")


def _parenthesized(column_list: sql.Composable, columns: Sequence[str]) -> sql.Composable:
    """``(a, b)``; nothing for a table without (copyable) columns, where ``()`` is a syntax error."""
    return sql.SQL(" ({})").format(column_list) if columns else sql.SQL("")


def copy_out(
    conn: psycopg.Connection,
    table: QualifiedName,
    columns: Sequence[str],
    *,
    order_by: Sequence[str] = (),
    key_column: str | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    binary: bool = False,
    key_ranges: Sequence[KeyRange] = (),
    key_runs: bool = False,
) -> Iterator[CopyBatch]:
    """Stream a table as batches of about ``batch_bytes`` of whole COPY TEXT rows (binary tuples
    with ``binary``).

    Memory stays bounded by one batch plus one row. Run it on a connection that imported the
    shared snapshot so the rows belong to the snapshot's instant. The connection must not be
    used for anything else until the iterator is exhausted or closed. Closing it before the end
    cancels the COPY, which aborts the connection's transaction. ``key_ranges`` reads only the
    rows in those ranges of key values (an incremental backup's changed stretches).
    ``key_runs``: ``order_by`` starts with ``key_column`` and each key's rows come as one run of
    identical printed keys (:func:`keys_come_in_runs`), so a batch's keys are found at the runs'
    edges instead of in every row.
    """
    key_index = _key_index(columns, key_column)
    statement = copy_out_statement(table, columns, order_by, key_ranges, binary=binary)
    try:
        with conn.cursor() as cursor, cursor.copy(statement):
            chunks = _copy_data_chunks(conn.pgconn, table, batch_bytes)
            if binary:
                yield from _tuple_batches(chunks, len(columns), key_index)
            else:
                yield from _line_batches(chunks, key_index, key_runs=key_runs)
    except psycopg.Error as exc:
        raise DatabaseError(f"COPY out of {table}: {one_line(exc)}") from exc
    except copybinary.MalformedRows as exc:
        raise DatabaseError(f"COPY out of {table}: {exc}") from exc


def _copy_data_chunks(pgconn: PGconn, table: QualifiedName, chunk_bytes: int) -> Iterator[bytes]:
    """The data of a COPY TO already started (psycopg's ``cursor.copy`` did that), in chunks of
    up to ``chunk_bytes`` (a message larger than that comes alone).

    Straight from libpq rather than through ``Copy.read()``: the server sends one message per
    row, and psycopg's per-message machinery (a generator driven by its wait loop) cost as much
    client CPU as the rest of the copy. This loop does the least per row: each message is copied
    into one reused buffer as it arrives, and freed at once, instead of being kept (a tracked
    memoryview) and joined with the others later. Waiting happens in ``poll``, which releases
    the GIL.
    """
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    get_copy_data = pgconn.get_copy_data
    buffer = memoryview(bytearray(chunk_bytes))
    filled = 0
    while True:
        nbytes, data = get_copy_data(1)
        if nbytes > 0:
            end = filled + nbytes
            if end > chunk_bytes:
                if filled:
                    yield bytes(buffer[:filled])
                    filled, end = 0, nbytes
                if end > chunk_bytes:
                    yield bytes(data)
                    continue
            buffer[filled:end] = data
            filled = end
        elif nbytes == 0:  # no complete message buffered: wait for the socket, then read
            poller.poll()
            pgconn.consume_input()
        else:
            break
    # Before the last yield: a consumer that stops there must find the COPY fully ended.
    _finish_copy_out(pgconn, poller, table)
    if filled:
        yield bytes(buffer[:filled])


def _finish_copy_out(pgconn: PGconn, poller: select.poll, table: QualifiedName) -> None:
    """Collect the results that follow the end of the data; raise the server's error if any."""
    error = None
    while True:
        while pgconn.is_busy():
            poller.poll()
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == ExecStatus.FATAL_ERROR and error is None:
            error = (result.error_message or b"").decode(errors="replace").strip()
    if error is not None:
        raise DatabaseError(f"COPY out of {table}: {'; '.join(error.splitlines())}")


def _key_index(columns: Sequence[str], key_column: str | None) -> int | None:
    if key_column is None:
        return None
    try:
        return list(columns).index(key_column)
    except ValueError:
        raise DatabaseError(
            f"key column {key_column!r} is not among the copied columns {list(columns)}"
        ) from None


def _line_batches(
    chunks: Iterable[bytes], key_index: int | None, *, key_runs: bool = False
) -> Iterator[CopyBatch]:
    """Cut chunks at their last line end, carrying a partial last line into the next batch.

    The server sends one message per row today, but the protocol does not promise it, so
    batches are cut on ``b"\\n"`` rather than on message boundaries.
    """
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            yield _make_batch(data if cut == len(data) else data[:cut], key_index, key_runs=key_runs)
        carry = data[cut:]
    if carry:
        raise DatabaseError("COPY stream ended in the middle of a row")


def _make_batch(data: bytes, key_index: int | None, *, key_runs: bool = False) -> CopyBatch:
    lines = data.split(b"\n")
    lines.pop()  # the empty string after the final newline
    if key_index is None:
        return CopyBatch(data, len(lines), lines=lines)
    keys = run_keys(lines, key_index) if key_runs else text_keys(lines, key_index)
    return CopyBatch(data, len(lines), keys, lines=lines)


def text_keys(lines: Sequence[bytes], key_index: int) -> list[bytes]:
    """Field ``key_index`` of each COPY TEXT line (as printed: escapes left in); IndexError when
    a line has fewer fields."""
    splits = key_index + 1
    return [line.split(b"\t", splits)[key_index] for line in lines]


# Runs shorter than this on average over the last RECENT_LINES lines (a unique key): the rest of
# the batch is read line by line, which is then cheaper.
SHORTEST_RUNS = 8
RECENT_LINES = 32


def run_keys(lines: Sequence[bytes], key_index: int) -> list[bytes]:
    """:func:`text_keys` of lines whose equal keys are contiguous (ordered by the key, see
    :func:`keys_come_in_runs`): each run's end is found by galloping then bisecting, so a key is
    read a few times per run instead of once per line (~6x less CPU for Letta's messages, ~200
    rows an agent). Falls back to every line when runs turn out short."""
    splits = key_index + 1

    def key_at(index: int) -> bytes:
        return lines[index].split(b"\t", splits)[key_index]

    count = len(lines)
    keys: list[bytes] = []
    start = 0
    while start < count:
        if start >= RECENT_LINES and len(set(keys[-RECENT_LINES:])) > RECENT_LINES // SHORTEST_RUNS:
            return keys + text_keys(lines[start:], key_index)
        key = key_at(start)
        same, step, differs = start, 1, start + 1  # lines[same] has the key; lines[differs] may not
        while differs < count and key_at(differs) == key:
            same, step = differs, step * 2
            differs = min(count, same + step)
        while differs - same > 1:
            middle = (same + differs) // 2
            if key_at(middle) == key:
                same = middle
            else:
                differs = middle
        keys.extend(repeat(key, differs - start))
        start = differs
    return keys


def keys_come_in_runs(table: TableDef, key: str | None) -> bool:
    """Whether rows ordered by ``key`` bring each key's rows together as one run of identical
    printed keys: true for a text column under the database's default or the C collation, whose
    equal values are equal bytes. Not assumed for other types (numeric 1.0 and 1.00 are equal
    and print differently) or collations (a nondeterministic one sorts unequal strings as equal)."""
    if key is None:
        return False
    try:
        column = table.column(key)
    except KeyError:
        return False
    text = column.type in ("text", "character varying") or column.type.startswith("character varying(")
    return text and column.collation in (None, '"C"', 'pg_catalog."C"', '"POSIX"', 'pg_catalog."POSIX"')


def _tuple_batches(chunks: Iterable[bytes], width: int, key_index: int | None) -> Iterator[CopyBatch]:
    splitter = copybinary.StreamSplitter(width, key_index)
    for chunk in chunks:
        data, ends, keys = splitter.feed(chunk)
        if ends:
            batch_keys = None if key_index is None else [NULL_TEXT if k is None else k for k in keys]
            yield CopyBatch(data, len(ends), batch_keys, ends)
    splitter.close()


def copy_in(
    conn: psycopg.Connection,
    table: QualifiedName,
    columns: Sequence[str],
    chunks: Iterable[bytes],
    *,
    freeze: bool = False,
    binary: bool = False,
) -> int:
    """Load COPY TEXT bytes (any chunking) into the named columns; returns the row count.

    ``binary``: the chunks are binary COPY tuples (no header or trailer: they are added here).

    Columns are matched by name, so the target may order them differently or have extra
    columns (they take their defaults). ``freeze=True`` truncates the table and loads it with
    ``COPY ... FREEZE`` in one transaction: rows are written already frozen, sparing the
    first VACUUM a rewrite of every page. Only for a table nobody else can see yet (a fresh
    restore target), and only when the whole table comes in this one call.
    """
    column_list = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    flags = [sql.SQL("FORMAT binary")] if binary else []
    flags += [sql.SQL("FREEZE")] if freeze else []
    options = sql.SQL(" ({})").format(sql.SQL(", ").join(flags)) if flags else sql.SQL("")
    if binary:
        chunks = copybinary.with_header(chunks)
    statement = sql.SQL("COPY {}{} FROM STDIN{}").format(
        table.identifier(), _parenthesized(column_list, columns), options
    )
    try:
        with conn.transaction(), conn.cursor() as cursor:
            if freeze:
                cursor.execute(sql.SQL("TRUNCATE {}").format(table.identifier()))
            with cursor.copy(statement) as copy:
                for chunk in chunks:
                    copy.write(chunk)
            return cursor.rowcount
    except psycopg.Error as exc:
        raise DatabaseError(f"COPY into {table}: {one_line(exc)}") from exc
