"""What a database snapshot holds: the one definition of its streams and documents.

The repository (:mod:`lifeboat.repo`) stores streams of records and free-form JSON documents
and knows nothing of PostgreSQL. A *database snapshot* gives them meaning (specified in
docs/FORMAT.md, "Database snapshots"):

- one stream per table, named ``table:<schema>.<table>``, whose records are the table's rows in
  PostgreSQL ``COPY … TO STDOUT`` text format, or, with ``encoding: "copy-binary"`` (tables with a
  ``vector`` column), binary COPY tuples without header and trailer; its attributes
  (:class:`TableStream`) name the table, the columns in record order, and the entity key whose
  zone maps the blobs carry. Read records with :func:`split_records` and fields with
  :func:`text_view`, which work for both encodings;
- four documents: ``source`` (:class:`SourceDocument`: the server and database read),
  ``letta`` (:class:`~lifeboat.letta.source.LettaDocument`: revision, agent catalog, runs in
  flight), ``schema`` (:class:`~lifeboat.pg.models.DatabaseSchema`: everything needed to recreate
  the database's structure) and ``timings`` (seconds per backup phase).

Writers build documents with :func:`documents`; readers use the typed accessors below instead
of looking keys up in ``Snapshot.documents`` or ``Stream.attributes``. A document that is there
but does not validate means the manifest is not what lifeboat wrote: :class:`CorruptRepository`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lifeboat.errors import CorruptRepository
from lifeboat.letta.catalog import AgentEntry, entry_adapter
from lifeboat.letta.source import LettaDocument, RunInFlight
from lifeboat.ops.snapshot_catalog import HeldCatalog, LightSnapshot
from lifeboat.pg import copybinary
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.repo import repository
from lifeboat.repo.manifest import Snapshot, Stream

__all__ = [
    "COPY_BINARY",
    "LETTA",
    "SCHEMA",
    "SOURCE",
    "TABLE_STREAM_PREFIX",
    "TIMINGS",
    "LettaDocument",
    "RunInFlight",
    "SourceDocument",
    "TableStream",
    "agent_entry",
    "catalog_by_id",
    "documents",
    "held_catalog",
    "letta_document",
    "records_holding",
    "runs_in_flight",
    "schema_document",
    "source_document",
    "split_records",
    "table_encoding",
    "table_stream",
    "table_stream_name",
    "table_streams",
    "text_lines",
    "text_view",
    "timings_document",
]

TABLE_STREAM_PREFIX = "table:"

# Document names in Snapshot.documents.
SOURCE = "source"
LETTA = "letta"
SCHEMA = "schema"
TIMINGS = "timings"

Model = TypeVar("Model", bound=BaseModel)


class TableStream(BaseModel):
    """Attributes of a table's stream."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    schema_: str = Field(alias="schema")
    table: str
    columns: list[str] = []  # the record's fields, in order (generated columns are not stored)
    key: str | None = None  # entity key: the column the blobs' zone maps range over (None: no zone maps)
    order_by: list[str] = []  # the order rows were streamed in (the entity key first, when there is one)
    encoding: str | None = None  # None: COPY TEXT lines; "copy-binary": binary COPY tuples
    types: list[str] | None = None  # copy-binary: each column's format_type text, in ``columns`` order

    @property
    def binary(self) -> bool:
        return self.encoding == COPY_BINARY


COPY_BINARY = "copy-binary"


class SourceDocument(BaseModel):
    """The PostgreSQL server and database a snapshot was read from."""

    model_config = ConfigDict(extra="allow")

    database: str | None = None
    server_version: str | None = None  # e.g. "15.8"
    server_version_num: int | None = None  # e.g. 150008
    letta_schema: str | None = None  # the schema holding Letta's tables; None: not a Letta database
    letta_revision: str | None = None  # copied from the letta document
    letta_release: str | None = None
    # Where the snapshot stands in the database's transaction history (lifeboat.pg.changes), so
    # the next backup can keep the blobs of rows unchanged since; absent: every backup reads all.
    change_token: dict[str, Any] | None = None


def table_stream_name(schema: str, table: str) -> str:
    return f"{TABLE_STREAM_PREFIX}{schema}.{table}"


def table_stream(stream: Stream) -> TableStream:
    """The attributes of a ``table:`` stream; an encoding this version does not know is refused."""
    attributes = _validate(TableStream, stream.attributes, f"attributes of stream {stream.name}")
    if attributes.encoding not in (None, COPY_BINARY):
        raise CorruptRepository(
            f"stream {stream.name} has encoding {attributes.encoding!r}, which this lifeboat cannot read "
            "(a newer lifeboat wrote it)"
        )
    if attributes.binary and len(attributes.types or ()) != len(attributes.columns):
        raise CorruptRepository(f"stream {stream.name}: a copy-binary stream needs one type per column")
    return attributes


def table_encoding(table: TableDef, enums: Iterable[str], utc_iso_session: bool) -> dict[str, Any]:
    """The encoding attributes of a table's stream: binary COPY for a table with a ``vector``
    column (the server's float-to-text conversion dominates its COPY), when every column type has
    an exact text view (:func:`text_view`) and the session prints times as that view does (ISO,
    UTC); ``{}`` (COPY TEXT) otherwise, or when ``LIFEBOAT_COPY_BINARY=0``."""
    if os.environ.get("LIFEBOAT_COPY_BINARY", "1") == "0" or not utc_iso_session:
        return {}
    types = [column.type for column in table.columns if column.copyable]
    enum_names = set(enums)
    if not any(copybinary.base_type(t) == "vector" for t in types):
        return {}
    if not all(copybinary.text_view_supports(t, enum_names) for t in types):
        return {}
    return {"encoding": COPY_BINARY, "types": types}


def split_records(attributes: TableStream, data: bytes, what: str = "") -> list[bytes]:
    """A blob's records: COPY TEXT lines (each with its ``\\n``) or binary tuples."""
    if not attributes.binary:
        return repository.split_records(data)
    try:
        return copybinary.split_rows(data, len(attributes.columns))
    except copybinary.MalformedRows as exc:
        raise CorruptRepository(f"{_stream_label(attributes)}{what}: malformed binary row ({exc})") from None


MAX_NEEDLES = 16  # more keys than this: every record is looked at (one pass per key would cost more)


def records_holding(attributes: TableStream, data: bytes, column: str, keys: Iterable[str]) -> list[bytes]:
    """The blob's records that may have one of ``keys`` in ``column``: a superset, in blob order,
    of the records :func:`split_records` gives whose field equals a key (filter them as those).

    A key that is non-empty, printable and without backslash is printed as itself by COPY TEXT (whatever the
    column's type) and is its own UTF-8 bytes in a binary tuple of a text-typed column, so a
    record whose field equals it holds those bytes: COPY TEXT lines are found with ``bytes.find``
    without splitting the blob, binary tuples are kept when they hold the bytes. Otherwise (too
    many keys, another key, a binary column of another type) every record is returned."""
    wanted = sorted(set(keys))
    plain = all(key and key.isprintable() and "\\" not in key for key in wanted)
    if attributes.binary:
        types = attributes.types or []
        position = attributes.columns.index(column) if column in attributes.columns else -1
        texty = 0 <= position < len(types) and copybinary.base_type(types[position]) in copybinary.TEXT_TYPES
        records = split_records(attributes, data)
        if not (plain and texty and len(wanted) <= MAX_NEEDLES):
            return records
        needles = [key.encode() for key in wanted]
        return [record for record in records if any(needle in record for needle in needles)]
    if not plain or len(wanted) > MAX_NEEDLES:
        return repository.split_records(data)
    return _lines_holding(data, [key.encode() for key in wanted])


def _lines_holding(data: bytes, needles: list[bytes]) -> list[bytes]:
    """The ``\\n``-ended lines of ``data`` that hold one of ``needles`` (none holds a newline), in
    order; like ``repository.split_records``, a last piece without its newline is no record."""
    found: dict[int, bytes] = {}
    for needle in needles:
        at = data.find(needle)
        while at != -1:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at) + 1
            if end == 0:
                break
            found[start] = data[start:end]
            at = data.find(needle, end)
    return [found[start] for start in sorted(found)]


def text_view(attributes: TableStream, *, compare: bool = False) -> copybinary.TextView | None:
    """How to turn the stream's binary tuples into COPY TEXT lines; None for a text stream.
    ``compare``: vectors as hex (exact and cheap) rather than as ``[…]`` text."""
    if not attributes.binary:
        return None
    return copybinary.TextView(attributes.types or [], compare=compare)


def text_lines(attributes: TableStream, chunks: Iterable[bytes], *, compare: bool = False) -> Iterator[bytes]:
    """Buffers of whole COPY TEXT lines from buffers of whole records of either encoding."""
    view = text_view(attributes, compare=compare)
    for data in chunks:
        if view is None:
            yield data
            continue
        try:
            yield b"".join(view.lines(data))
        except copybinary.MalformedRows as exc:
            raise CorruptRepository(f"{_stream_label(attributes)}: malformed binary row ({exc})") from None


def _stream_label(attributes: TableStream) -> str:
    return f"table {attributes.schema_}.{attributes.table}"


def table_streams(snapshot: Snapshot) -> dict[tuple[str, str], tuple[Stream, TableStream]]:
    """(schema, table) → the table's stream and its attributes."""
    found = {}
    for stream in snapshot.streams:
        if stream.name.startswith(TABLE_STREAM_PREFIX):
            attributes = table_stream(stream)
            found[(attributes.schema_, attributes.table)] = (stream, attributes)
    return found


def source_document(snapshot: Snapshot) -> SourceDocument:
    return _validate(SourceDocument, snapshot.documents.get(SOURCE, {}), f"{SOURCE} document")


def letta_document(snapshot: Snapshot) -> LettaDocument:
    return _validate(LettaDocument, _letta(snapshot), f"{LETTA} document")


def held_catalog(snapshot: Snapshot) -> HeldCatalog | None:
    """The agent catalog as set aside by :func:`lifeboat.ops.snapshot_catalog.read_snapshot`, if it was."""
    return snapshot.held_catalog if isinstance(snapshot, LightSnapshot) else None


def _letta(snapshot: Snapshot) -> Any:
    """The letta document as stored (its catalog parsed, if it was set aside)."""
    letta = snapshot.documents.get(LETTA, {})
    held = held_catalog(snapshot)
    if held is not None and isinstance(letta, dict):
        return {**letta, "agents": held.entries()}
    return letta


def catalog_by_id(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """Agent id -> its catalog entry as stored (unvalidated JSON), for picking a few agents out
    of a big catalog without validating all of it (:func:`agent_entry` validates one). Every
    entry must be an object with a string ``id``; no catalog (``agents`` null or absent): empty."""
    letta = _letta(snapshot)
    if not isinstance(letta, dict):
        raise CorruptRepository(f"snapshot {LETTA} document is not valid: (top): not an object")
    agents = letta.get("agents")
    if agents is None:
        return {}
    if not isinstance(agents, list):
        raise CorruptRepository(f"snapshot {LETTA} document is not valid: agents: not a list")
    by_id = {}
    for position, entry in enumerate(agents):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise CorruptRepository(
                f"snapshot {LETTA} document is not valid: agents.{position}: not an entry with a string id"
            )
        by_id[entry["id"]] = entry
    return by_id


def agent_entry(entry: dict[str, Any]) -> AgentEntry:
    """One catalog entry of :func:`catalog_by_id`, validated."""
    try:
        return entry_adapter().validate_python(entry)
    except ValidationError as exc:
        raise _invalid(exc, f"{LETTA} document's entry of agent {entry.get('id')}") from None


class _RunsInFlight(BaseModel):  # the letta document's runs, its other fields left unread
    runs_in_flight: list[RunInFlight] = []


def runs_in_flight(snapshot: Snapshot) -> list[RunInFlight]:
    """The letta document's runs in flight, without validating its agent catalog."""
    letta = snapshot.documents.get(LETTA, {})
    return _validate(_RunsInFlight, letta, f"{LETTA} document").runs_in_flight


def schema_document(snapshot: Snapshot) -> DatabaseSchema:
    """The schema document; a snapshot without one cannot be restored."""
    if SCHEMA not in snapshot.documents:
        raise CorruptRepository(f"snapshot {snapshot.short_id} has no {SCHEMA} document")
    return _validate(DatabaseSchema, snapshot.documents[SCHEMA], f"{SCHEMA} document of {snapshot.short_id}")


def timings_document(snapshot: Snapshot) -> dict[str, float]:
    timings = snapshot.documents.get(TIMINGS, {})
    if not isinstance(timings, dict):
        raise CorruptRepository(f"snapshot {snapshot.short_id}: the {TIMINGS} document is not an object")
    return {str(k): float(v) for k, v in timings.items() if isinstance(v, int | float)}


def documents(
    source: SourceDocument, letta: LettaDocument, schema: DatabaseSchema, timings: dict[str, float]
) -> dict[str, Any]:
    """``Snapshot.documents`` of a database snapshot (absent optional fields are left out)."""
    return {
        SOURCE: source.model_dump(mode="json", exclude_none=True),
        LETTA: letta.model_dump(mode="json", exclude_none=True),
        SCHEMA: schema.model_dump(mode="json", by_alias=True),
        TIMINGS: dict(timings),
    }


def _validate(model: type[Model], value: Any, what: str) -> Model:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _invalid(exc, what) from None


def _invalid(exc: ValidationError, what: str) -> CorruptRepository:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top)"
    return CorruptRepository(f"snapshot {what} is not valid: {where}: {first['msg']}")
