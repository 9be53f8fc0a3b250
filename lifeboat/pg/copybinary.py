"""COPY BINARY rows: splitting a stream into rows, reading fields, and their COPY TEXT form.

PostgreSQL's binary COPY format (documented with the COPY command, unchanged since 7.4) is a
header (the 11-byte signature, an int32 flags word and an int32 header-extension length followed
by that many bytes), then one *tuple* per row, then the trailer ``int16 -1``. A tuple is an int16
field count followed by each field as an int32 byte length (``-1``: NULL, then no bytes) and that
many bytes of the type's binary ("send") representation. Integers are big-endian.

Lifeboat stores only the tuples (docs/FORMAT.md §16.1, ``encoding: "copy-binary"``): a loader
sends :data:`HEADER` first and :data:`TRAILER` last, so every blob is whole rows and identical rows
give identical blobs whatever stream they are in.

:class:`TextView` turns a tuple into the COPY TEXT line a text COPY of the same row prints in a
session with ``DateStyle = ISO`` and ``TimeZone = UTC`` (the only sessions whose tables are stored
binary), for the column types :func:`text_view_supports` accepts. The one exception is
``vector``: its elements are printed with 9 significant digits (``%.9g``), which read back as the
same float4 but are not always PostgreSQL's shortest digits. ``compare=True`` prints a vector as
the hex of its binary form instead (cheap and exact, for comparisons).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags 0, no header extension
TRAILER = b"\xff\xff"
NULL_TEXT = b"\\N"

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_VECTOR_HEAD = struct.Struct(">hh")

Field = bytes | None


class MalformedRows(ValueError):
    """Bytes that are not whole binary COPY tuples of the expected width."""


# -- splitting ------------------------------------------------------------------------------------


def row_ends(
    data: bytes | memoryview, start: int = 0, *, width: int | None = None, key_index: int | None = None
) -> tuple[list[int], list[Field], int, bool]:
    """Walk the tuples of ``data`` from ``start``: (end offset of each complete tuple, the key
    field of each when ``key_index`` is given, offset where the first incomplete tuple starts,
    whether the trailer was reached there). ``width``: the field count every tuple must have."""
    unpack16, unpack32 = _INT16.unpack_from, _INT32.unpack_from
    size = len(data)
    ends: list[int] = []
    keys: list[Field] = []
    position = start
    while position + 2 <= size:
        (count,) = unpack16(data, position)
        if count == -1:
            return ends, keys, position, True
        if count < 0 or (width is not None and count != width):
            raise MalformedRows(f"a row has {count} fields, expected {width}")
        cursor = position + 2
        key: Field = None
        for index in range(count):
            if cursor + 4 > size:
                return ends, keys, position, False
            (length,) = unpack32(data, cursor)
            cursor += 4
            if length < -1:
                raise MalformedRows(f"a field has length {length}")
            if index == key_index and length >= 0:
                key = bytes(data[cursor : cursor + length])
            if length > 0:
                cursor += length
        if cursor > size:
            return ends, keys, position, False
        ends.append(cursor)
        if key_index is not None:
            keys.append(key)
        position = cursor
    return ends, keys, position, False


def split_rows(data: bytes, width: int | None = None) -> list[bytes]:
    """The tuples of a buffer that holds whole tuples only (a stored blob)."""
    ends, _keys, stop, trailer = row_ends(data, width=width)
    if trailer or stop != len(data):
        raise MalformedRows("the rows end in the middle of a row" if not trailer else "a row count of -1")
    return [data[s:e] for s, e in zip([0, *ends], ends, strict=False)]  # no rows: []


def fields(row: bytes) -> list[Field]:
    """A tuple's fields (``None`` for NULL)."""
    unpack32 = _INT32.unpack_from
    (count,) = _INT16.unpack_from(row, 0)
    out: list[Field] = []
    cursor = 2
    for _ in range(count):
        (length,) = unpack32(row, cursor)
        cursor += 4
        if length < 0:
            out.append(None)
        else:
            out.append(row[cursor : cursor + length])
            cursor += length
    if cursor != len(row) or count < 0:
        raise MalformedRows("a row's field lengths do not add up to its size")
    return out


def tuple_of(values: Sequence[Field]) -> bytes:
    """The tuple of the given fields (inverse of :func:`fields`)."""
    parts = [_INT16.pack(len(values))]
    for value in values:
        if value is None:
            parts.append(_INT32.pack(-1))
        else:
            parts.append(_INT32.pack(len(value)))
            parts.append(value)
    return b"".join(parts)


class StreamSplitter:
    """Cuts the byte stream of a ``COPY … TO STDOUT (FORMAT binary)`` into batches of whole tuples."""

    def __init__(self, width: int, key_index: int | None) -> None:
        self.width, self.key_index = width, key_index
        self._carry = b""
        self._header_done = False
        self.finished = False

    def feed(self, chunk: bytes) -> tuple[bytes, list[int], list[Field]]:
        """(tuples completed by ``chunk`` as one buffer, their end offsets in it, their keys)."""
        data = self._carry + chunk if self._carry else chunk
        start = 0
        if not self._header_done:
            if len(data) < len(HEADER):
                self._carry = data
                return b"", [], []
            if not data.startswith(SIGNATURE):
                raise MalformedRows("the COPY stream does not start with the binary signature")
            (extension,) = _INT32.unpack_from(data, len(SIGNATURE) + 4)
            start = len(HEADER) + extension
            if len(data) < start:
                self._carry = data
                return b"", [], []
            self._header_done = True
        if self.finished:
            raise MalformedRows("data after the binary COPY trailer")
        ends, keys, stop, trailer = row_ends(data, start, width=self.width, key_index=self.key_index)
        if trailer:
            self.finished = True
            if stop + 2 != len(data):
                raise MalformedRows("data after the binary COPY trailer")
            self._carry = b""
        else:
            self._carry = data[stop:]
        if not ends:
            return b"", [], keys
        body = data[start:stop]
        return body, [end - start for end in ends], keys

    def close(self) -> None:
        if self._carry or (self._header_done and not self.finished):
            raise MalformedRows("the binary COPY stream ended in the middle of a row")


def with_header(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A loadable binary COPY stream from stored tuples: header, the tuples, trailer."""
    yield HEADER
    yield from chunks
    yield TRAILER


# -- the text form --------------------------------------------------------------------------------

_PG_EPOCH_JDATE = 2451545  # Julian day of 2000-01-01, PostgreSQL's epoch
_USECS_PER_DAY = 86_400_000_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

TEXT_TYPES = frozenset({"text", "character varying", "character", "bpchar", "name", "json", "citext"})
FIXED_TYPES = frozenset(
    {
        "jsonb",
        "boolean",
        "smallint",
        "integer",
        "bigint",
        "timestamp with time zone",
        "timestamp without time zone",
        "date",
        "uuid",
        "vector",
    }
)


def base_type(type_name: str) -> str:
    """``letta.vector(4096)`` → ``vector``; ``character varying(255)`` → ``character varying``.

    Built-in types print unqualified; of the qualified names only pgvector's ``vector`` (in
    whatever schema the extension lives) loses its schema, so a user type that happens to be
    called ``text`` is never taken for the built-in one."""
    name = type_name.split("(", 1)[0].strip()
    if name.endswith(".vector") and not name.startswith('"'):
        return "vector"
    return name


def text_view_supports(type_name: str, enums: Iterable[str] = ()) -> bool:
    """Whether :class:`TextView` prints this ``format_type`` text exactly (``enums``: the enum types
    of the database as ``format_type`` prints them; their binary form is the label)."""
    if type_name in set(enums):
        return True
    if type_name.endswith("]"):
        return False
    return base_type(type_name) in TEXT_TYPES | FIXED_TYPES


class TextView:
    """COPY TEXT lines of binary tuples whose columns have the given ``format_type`` types."""

    def __init__(self, types: Sequence[str], *, compare: bool = False) -> None:
        self.types = list(types)
        self._printers = [_printer(base_type(t), compare) for t in types]

    def field(self, position: int, value: Field) -> bytes:
        """One field's COPY TEXT form (escaped; ``\\N`` for NULL)."""
        return NULL_TEXT if value is None else self._printers[position](value)

    def text_fields(self, row: bytes) -> list[bytes]:
        values = fields(row)
        if len(values) != len(self._printers):
            raise MalformedRows(f"a row has {len(values)} fields, expected {len(self._printers)}")
        return [NULL_TEXT if v is None else p(v) for p, v in zip(self._printers, values, strict=True)]

    def line(self, row: bytes) -> bytes:
        """The row's COPY TEXT line, ``\\n`` included."""
        return b"\t".join(self.text_fields(row)) + b"\n"

    def lines(self, data: bytes) -> list[bytes]:
        """The lines of a buffer of whole tuples."""
        return [self.line(row) for row in split_rows(data, len(self._printers))]


def _escape_text(value: bytes) -> bytes:
    """COPY TEXT escaping as the server does it: backslash, and the control characters it names."""
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    for raw, escaped in _CONTROL:
        if raw in value:
            value = value.replace(raw, escaped)
    return value


_CONTROL = (
    (b"\b", b"\\b"),
    (b"\f", b"\\f"),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\t", b"\\t"),
    (b"\v", b"\\v"),
)


def _printer(base: str, compare: bool) -> Callable[[bytes], bytes]:
    printers: dict[str, Callable[[bytes], bytes]] = {
        "jsonb": lambda v: _escape_text(v[1:]),
        "boolean": lambda v: b"t" if v != b"\x00" else b"f",
        "smallint": lambda v: str(_INT16.unpack(v)[0]).encode(),
        "integer": lambda v: str(_INT32.unpack(v)[0]).encode(),
        "bigint": lambda v: str(_INT64.unpack(v)[0]).encode(),
        "timestamp with time zone": lambda v: _timestamp(_INT64.unpack(v)[0], b"+00"),
        "timestamp without time zone": lambda v: _timestamp(_INT64.unpack(v)[0], b""),
        "date": lambda v: _date(_INT32.unpack(v)[0]),
        "uuid": lambda v: str(uuid.UUID(bytes=v)).encode(),
        "vector": _vector_hex if compare else _vector_text,
    }
    return printers.get(base, _escape_text)  # text types and enum labels


def _vector_text(value: bytes) -> bytes:
    dim, _unused = _VECTOR_HEAD.unpack_from(value)
    if len(value) != 4 + 4 * dim:
        raise MalformedRows(f"a vector of {dim} dimensions has {len(value)} bytes")
    numbers = struct.unpack_from(f">{dim}f", value, 4)
    return b"[" + (",".join(["%.9g"] * dim) % numbers).encode() + b"]"


def _vector_hex(value: bytes) -> bytes:
    return b"\\\\x" + value.hex().encode()


def _ymd(julian_day: int) -> tuple[int, int, int]:
    """PostgreSQL's ``j2date``: (year, month, day) of a Julian day (year 0 is 1 BC)."""
    julian = julian_day + 32044
    quad = julian // 146097
    extra = (julian - quad * 146097) * 4 + 3
    julian += 60 + quad * 3 + extra // 146097
    quad = julian // 1461
    julian -= quad * 1461
    y = julian * 4 // 1461
    julian = ((julian + 305) % 365 if y != 0 else (julian + 306) % 366) + 123
    y += quad * 4
    year = y - 4800
    quad = julian * 2141 // 65536
    day = julian - 7834 * quad // 256
    month = (quad + 10) % 12 + 1
    return year, month, day


def _date_text(days: int) -> tuple[bytes, bool]:
    year, month, day = _ymd(days + _PG_EPOCH_JDATE)
    bc = year <= 0
    return b"%04d-%02d-%02d" % (-(year - 1) if bc else year, month, day), bc


def _date(days: int) -> bytes:
    if days == _INT32_MIN:
        return b"-infinity"
    if days == _INT32_MAX:
        return b"infinity"
    text, bc = _date_text(days)
    return text + b" BC" if bc else text


def _timestamp(micros: int, zone: bytes) -> bytes:
    """ISO DateStyle, UTC: ``2026-12-03 23:29:10.732702+00`` (fraction without trailing zeros)."""
    if micros == _INT64_MIN:
        return b"-infinity"
    if micros == _INT64_MAX:
        return b"infinity"
    days, of_day = divmod(micros, _USECS_PER_DAY)
    date, bc = _date_text(days)
    seconds, fraction = divmod(of_day, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = b"%s %02d:%02d:%02d" % (date, hour, minute, second)
    if fraction:
        text += (b".%06d" % fraction).rstrip(b"0")
    text += zone
    return text + b" BC" if bc else text
