"""Row-by-row comparison of two streams of COPY TEXT lines of one table (snapshot vs database).

Both sides arrive in the snapshot's own order (entity key, then primary key), so they are walked
in lockstep: a pair of equal lines costs one ``bytes`` comparison and nothing is kept. Only lines
that differ are parked, under their row key, until the other side shows the same key (a changed
row) or the streams end (missing / extra rows). Memory therefore grows with the number of
differing rows, never with the table — and a database whose collation orders keys differently
from the snapshot's still compares correctly, it just parks more rows on the way. Beyond
:data:`PARKED_BYTES_LIMIT` parked bytes only a digest of each further line is kept (a changed row
is then reported without its column list).

Values are compared as the server prints them in COPY TEXT: a ``vector`` prints every float in
its shortest exact form (so equal text = equal bits), ``json`` keeps its text verbatim. Only
``timestamp with time zone`` fields are compared as instants when their text differs (the text
depends on the reading session's TimeZone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Any

PARKED_BYTES_LIMIT = 64 << 20
NULL = b"\\N"
MAX_LISTED = 100


@dataclass(frozen=True)
class RowLayout:
    """How to read one table's lines: its columns, which of them name a row, which are instants."""

    columns: tuple[str, ...]
    key: tuple[int, ...]  # positions of the row key (primary key, else a unique key, else every column)
    instants: frozenset[int] = frozenset()  # timestamptz columns
    stamps: tuple[int, ...] = ()  # columns telling when a row was last written (updated_at, created_at)

    def key_of(self, line: bytes) -> bytes:
        if len(self.key) == len(self.columns):
            return line
        fields = line.split(b"\t")
        return b"\t".join(fields[i] for i in self.key)


@dataclass
class Parked:
    line: bytes | None  # None when only the digest was kept
    digest: bytes


@dataclass
class TableDiff:
    """What one table's comparison found (ids: row keys as text, at most :data:`MAX_LISTED` each)."""

    rows_snapshot: int = 0
    rows_database: int = 0
    missing: list[bytes] = field(default_factory=list)  # snapshot lines (or keys) absent from the database
    extra: list[bytes] = field(default_factory=list)  # database lines absent from the snapshot
    changed: list[tuple[bytes, bytes | None, list[str]]] = field(
        default_factory=list
    )  # (db line, snap line, columns)
    missing_count: int = 0
    extra_count: int = 0
    changed_count: int = 0
    changed_columns: dict[str, int] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return not (self.missing_count or self.extra_count or self.changed_count)


class _Parking:
    def __init__(self) -> None:
        self.snapshot: dict[bytes, list[Parked]] = {}
        self.database: dict[bytes, list[Parked]] = {}
        self.bytes = 0

    def park(self, side: dict[bytes, list[Parked]], key: bytes, line: bytes) -> None:
        keep = self.bytes < PARKED_BYTES_LIMIT
        self.bytes += len(line) if keep else 32
        digest = hashlib.blake2b(line, digest_size=16).digest()
        side.setdefault(key, []).append(Parked(line if keep else None, digest))

    @staticmethod
    def take(side: dict[bytes, list[Parked]], key: bytes) -> Parked | None:
        entries = side.get(key)
        if not entries:
            return None
        entry = entries.pop(0)
        if not entries:
            del side[key]
        return entry


def diff_streams(
    layout: RowLayout,
    snapshot: Iterable[bytes],
    database: Iterable[bytes],
    **callbacks: Any,
) -> TableDiff:
    """Compare two byte streams of whole COPY TEXT lines (any chunking) of one table.

    While the streams agree they are compared as bytes, a chunk at a time (``memcmp`` speed, rows
    counted by their newlines); from the line holding the first difference on, the rest is
    compared line by line with :func:`diff_lines`. Callbacks as for :func:`diff_lines`.
    """
    snap_chunks, db_chunks = iter(snapshot), iter(database)
    a = b = b""
    tail = b""  # bytes since the last newline, already found equal on both sides
    rows = 0
    while True:
        if not a:
            a = next(snap_chunks, b"")
        if not b:
            b = next(db_chunks, b"")
        if not a or not b:
            break
        n = min(len(a), len(b))
        head = a[:n]
        if head != b[:n]:
            cut = head.rfind(b"\n", 0, _first_difference(head, b[:n])) + 1
            if cut:
                rows += head.count(b"\n", 0, cut)
                tail = b""
            a, b = a[cut:], b[cut:]
            break
        newline = head.rfind(b"\n")
        if newline >= 0:
            rows += head.count(b"\n")
            tail = head[newline + 1 :]
        else:
            tail += head
        a, b = a[n:], b[n:]
    a, b = (tail + a if a else a), (tail + b if b else b)
    return diff_lines(
        layout,
        lines_of(_chain(a, snap_chunks)),
        lines_of(_chain(b, db_chunks)),
        equal_rows=rows,
        **callbacks,
    )


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first differing byte of two equally long, different byte strings."""
    low, high = 0, len(a)
    while high - low > 4096:  # narrow down with slice comparisons (memcmp), then byte by byte
        middle = (low + high) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle
    for index in range(low, high):
        if a[index] != b[index]:
            return index
    return high


def diff_lines(
    layout: RowLayout,
    snapshot: Iterable[bytes],
    database: Iterable[bytes],
    *,
    equal_rows: int = 0,
    on_missing: Callable[[bytes], None] | None = None,
    on_extra: Callable[[bytes], None] | None = None,
    on_changed: Callable[[bytes, bytes | None, list[str]], None] | None = None,
) -> TableDiff:
    """Compare two line streams (no trailing newlines) of one table; see the module docstring.

    ``equal_rows``: rows already found equal before these lines (counted on both sides). The
    callbacks see *every* difference (the result lists at most :data:`MAX_LISTED` of each).
    """
    result = TableDiff(rows_snapshot=equal_rows, rows_database=equal_rows)
    parking = _Parking()

    def changed(db_line: bytes, snap: Parked) -> None:
        if snap.line is None and hashlib.blake2b(db_line, digest_size=16).digest() == snap.digest:
            return
        columns = ["?"] if snap.line is None else changed_columns(layout, snap.line, db_line)
        if not columns:
            return  # equal instants printed in another time zone
        result.changed_count += 1
        for column in columns:
            result.changed_columns[column] = result.changed_columns.get(column, 0) + 1
        if len(result.changed) < MAX_LISTED:
            result.changed.append((db_line, snap.line, columns))
        if on_changed:
            on_changed(db_line, snap.line, columns)

    for snap_line, db_line in zip_longest(snapshot, database):
        if snap_line is not None:
            result.rows_snapshot += 1
        if db_line is not None:
            result.rows_database += 1
        if snap_line == db_line:
            continue
        if snap_line is not None:
            key = layout.key_of(snap_line)
            found = parking.take(parking.database, key)
            if found is None:
                parking.park(parking.snapshot, key, snap_line)
            elif found.line is not None:
                changed(found.line, Parked(snap_line, b""))
            else:
                parking.park(parking.snapshot, key, snap_line)  # cannot pair a digest-only entry
                parking.database.setdefault(key, []).insert(0, found)
        if db_line is not None:
            key = layout.key_of(db_line)
            found = parking.take(parking.snapshot, key)
            if found is None:
                parking.park(parking.database, key, db_line)
            else:
                changed(db_line, found)
    for key, entries in sorted(parking.snapshot.items()):
        for entry in entries:
            result.missing_count += 1
            shown = entry.line if entry.line is not None else key
            if len(result.missing) < MAX_LISTED:
                result.missing.append(shown)
            if on_missing:
                on_missing(shown)
    for key, entries in sorted(parking.database.items()):
        for entry in entries:
            result.extra_count += 1
            shown = entry.line if entry.line is not None else key
            if len(result.extra) < MAX_LISTED:
                result.extra.append(shown)
            if on_extra:
                on_extra(shown)
    return result


def changed_columns(layout: RowLayout, before: bytes, after: bytes) -> list[str]:
    """Columns whose COPY text differs (instants compared as instants)."""
    old, new = before.split(b"\t"), after.split(b"\t")
    if len(old) != len(new):
        return list(layout.columns)
    names = []
    for position, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        if position in layout.instants and _same_instant(a, b):
            continue
        names.append(layout.columns[position])
    return names


def parse_instant(field_text: bytes) -> datetime | None:
    """A COPY TEXT timestamp (ISO DateStyle) as an aware datetime; naive ones are taken as UTC."""
    if field_text == NULL:
        return None
    try:
        value = datetime.fromisoformat(field_text.decode())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _same_instant(a: bytes, b: bytes) -> bool:
    first, second = parse_instant(a), parse_instant(b)
    return first is not None and first == second


def written_after(layout: RowLayout, line: bytes, instant: datetime, columns: Sequence[str] = ()) -> bool:
    """Whether the row carries a write timestamp after ``instant``; for a changed row (``columns``
    given) that timestamp must itself be among the changed columns."""
    fields = line.split(b"\t")
    for position in layout.stamps:
        if columns and layout.columns[position] not in columns:
            continue
        value = parse_instant(fields[position]) if position < len(fields) else None
        if value is not None and value > instant:
            return True
    return False


def field_text(line: bytes, position: int) -> str | None:
    """One COPY TEXT field as text (escapes of ids never occur; NULL → None)."""
    raw = line.split(b"\t")[position] if position < line.count(b"\t") + 1 else NULL
    return None if raw == NULL else raw.decode(errors="replace")


def lines_of(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without newline) of chunks that each hold whole COPY TEXT lines."""
    for chunk in chunks:
        parts = chunk.split(b"\n")
        parts.pop()
        yield from parts
