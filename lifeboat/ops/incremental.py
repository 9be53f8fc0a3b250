"""Incremental backup: keep the blobs of rows unchanged since an earlier snapshot of the same
database, read only the key ranges that changed.

Every backup is complete (a manifest lists every blob of every table; restoring never needs
another snapshot), but a backup that finds a *parent* — the newest earlier snapshot of the same
database whose :class:`~lifeboat.pg.changes.ChangeToken` the current one can follow — asks the
server what changed per key (a scan of the table's row headers, no row is printed) and
references the parent's blobs for the unchanged runs (:mod:`lifeboat.ops.incremental_plan`).
A table whose definition, or anything else that changes how COPY prints it, differs from the
parent's is read whole, as is every table without a parent.
"""

from __future__ import annotations

import contextlib
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import psycopg

from lifeboat import pg
from lifeboat.errors import CorruptRepository, DatabaseError, SnapshotNotFound
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.incremental_blobs import BlobReader, DecodedBudget
from lifeboat.ops.incremental_catalog import KeyProofs, ParentCatalog, proof_of
from lifeboat.ops.incremental_plan import Emit, Keep, Read, Segment, plan_table
from lifeboat.ops.pipeline import pipelined
from lifeboat.ops.snapshot_catalog import read_snapshot
from lifeboat.pg.changes import ChangeToken, key_counts, sorts_avoided, table_count
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.repo.manifest import BlobRef, Stream
from lifeboat.repo.repository import Repository
from lifeboat.repo.writer import RepositoryWriter, StreamWriter

# How many of the newest manifests to look at for a parent (each is read and decrypted).
PARENT_CANDIDATES = 8


@dataclass
class Parent:
    """What an incremental backup needs of the earlier snapshot it follows: its id, token, schema,
    table streams and agent catalog (as stored, for the entries an incremental backup reuses)."""

    snapshot_id: str
    token: ChangeToken  # the parent's
    now: ChangeToken  # the current backup's
    schema: DatabaseSchema
    streams: dict[tuple[str, str], tuple[Stream, layout.TableStream]]
    catalog: ParentCatalog | None = None
    decoded: DecodedBudget = field(default_factory=DecodedBudget)  # the plans' decoded blobs


@dataclass
class IncrementalStats:
    """What the incremental shortcut saved, for the backup's summary."""

    parent: str | None = None
    why_not: str | None = None  # why there is no parent (None: there is one)
    tables_kept: int = 0  # tables whose stream is entirely the parent's blobs
    tables_partly_read: int = 0
    tables_read: int = 0  # read whole
    bytes_kept: int = 0  # plaintext bytes referenced instead of read
    agents_kept: int | None = None  # agent catalog entries taken from the parent (None: none tried)
    proofs: KeyProofs = field(default_factory=KeyProofs, repr=False)  # what each table's plan proved
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict[str, object]:
        return {
            k: v
            for k, v in self.__dict__.items()
            if v is not None and not k.startswith("_") and k != "proofs"
        }

    def add(self, *, kept: int, reads: int, bytes_kept: int) -> None:
        with self._lock:
            self.bytes_kept += bytes_kept
            if reads == 0:
                self.tables_kept += 1
            elif kept:
                self.tables_partly_read += 1
            else:
                self.tables_read += 1


def find_parent(repo: Repository, token: ChangeToken | None) -> tuple[Parent | None, str | None]:
    """The newest snapshot of this database the current backup may follow, or (None, why not)."""
    if token is None:
        return None, "the server's transaction history cannot be read (standby or missing privilege)"
    for snapshot_id in repo.snapshot_ids_newest_first()[:PARENT_CANDIDATES]:
        try:
            # the agent catalog set aside, as JSON; its entries are validated where they are reused
            snapshot = read_snapshot(repo, snapshot_id, read_ids=False)
            earlier = ChangeToken.from_document(layout.source_document(snapshot).change_token)
            if earlier is None or (earlier.system_identifier, earlier.database_oid) != (
                token.system_identifier,
                token.database_oid,
            ):
                continue
            why = token.why_not_after(earlier)
            if why is not None:
                return None, why
            streams = layout.table_streams(snapshot)
            catalog = ParentCatalog.of(snapshot)
            return Parent(
                snapshot.id, earlier, token, layout.schema_document(snapshot), streams, catalog
            ), None
        except (CorruptRepository, SnapshotNotFound):
            continue
    return None, "no earlier snapshot of this database"


def previous_stream(
    parent: Parent | None, schema: DatabaseSchema, table: TableDef, attributes: layout.TableStream
) -> Stream | None:
    """The parent's stream of ``table`` when its rows would print exactly as they do now."""
    if parent is None or not _same_output(parent.schema, schema):
        return None
    name = f"{table.schema_}.{table.name}"
    layout_then = parent.token.tables.get(name)
    if layout_then is None or layout_then != parent.now.tables.get(name):
        return None
    found = parent.streams.get((table.schema_, table.name))
    if found is None:
        return None
    stream, before = found
    same_stream = (before.columns, before.key, before.order_by, before.encoding, before.types) == (
        attributes.columns,
        attributes.key,
        attributes.order_by,
        attributes.encoding,  # a text blob in a binary stream (or back) would be unreadable
        attributes.types,
    )
    same_table = _columns(_table(parent.schema, table)) == _columns(table)
    extra = set(before.model_dump(by_alias=True)) - set(attributes.model_dump(by_alias=True))
    return stream if same_stream and same_table and not extra else None


def _same_output(before: DatabaseSchema, now: DatabaseSchema) -> bool:
    """Server, extensions, enums and database encoding and collation as they were."""
    database = ("encoding", "collate", "ctype")
    return (
        before.server_version_num == now.server_version_num
        and before.extensions == now.extensions
        and [(e.schema_, e.name, e.labels) for e in before.enums] == [(e.schema_, e.name, e.labels) for e in now.enums]
        and all(getattr(before.database, name) == getattr(now.database, name) for name in database)
    )  # fmt: skip


def _table(schema: DatabaseSchema, table: TableDef) -> TableDef | None:
    try:
        return schema.table(table.schema_, table.name)
    except KeyError:
        return None


def _columns(table: TableDef | None) -> list[tuple[str, str, str, str | None]] | None:
    if table is None:
        return None
    return [(c.name, c.type, c.generated, c.collation) for c in table.columns]


def copy_table(
    conn: psycopg.Connection,
    repo: Repository,
    writer: RepositoryWriter,
    parent: Parent,
    table: TableDef,
    attributes: layout.TableStream,
    previous: Stream,
    stream: StreamWriter,
    *,
    batches: Batches,
    store: Callable[[pg.CopyBatch], None],
    stats: IncrementalStats,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write ``table``'s stream from ``previous`` (its parent's) and what changed since: plan,
    then kept blobs referenced, unchanged records copied, changed ranges read."""
    key = attributes.key
    key_index = attributes.columns.index(key) if key is not None else 0
    reader = BlobReader(repo, key_index, runs=pg.keys_come_in_runs(table, key), budget=parent.decoded)
    try:
        segments = plan(conn, reader, writer, parent, table, attributes, previous)
        stats.proofs.record(table.schema_, table.name, proof_of(key, segments, previous.blobs))
        some_keys = any(isinstance(s, Read) for s in segments) and Read(None, None) not in segments
        with sorts_avoided(conn) if some_keys else contextlib.nullcontext():  # not for a whole table
            write_table(
                stream,
                segments,
                key=key,
                reader=reader,
                batches=batches,
                store=store,
                stats=stats,
                progress=progress,
            )
    finally:
        reader.close()


def plan(
    conn: psycopg.Connection,
    reader: BlobReader,
    writer: RepositoryWriter,
    parent: Parent,
    table: TableDef,
    attributes: layout.TableStream,
    previous: Stream,
) -> list[Segment]:
    """The segments that rebuild ``table``'s stream from ``previous`` and what changed since
    (``reader`` decodes the previous blobs the plan must look into)."""
    key = attributes.key
    # binary rows are kept or read whole, never cut by key; so is a table with too many keys
    counts = (
        None
        if key is None or attributes.binary
        else key_counts(conn, table.qualified, key, parent.token, now=parent.now)
    )
    if key is None or counts is None:
        rows, changed = table_count(conn, table.qualified, parent.token, now=parent.now)
    else:
        rows, changed = sum(count.rows for count in counts), any(count.changed for count in counts)
    if not changed and rows == previous.records and all(writer.can_reference(b) for b in previous.blobs):
        return [Keep(previous.blobs)] if previous.blobs else []  # whatever the key's order
    if key is None or counts is None:
        return [Read(None, None)]
    return plan_table(previous.blobs, counts, writer.can_reference, reader.counts)  # type: ignore[arg-type]


Batches = Callable[
    [Sequence[pg.KeyRange]], Iterator[pg.CopyBatch]
]  # COPY of rows in these ranges (all if none)


def write_table(
    stream: StreamWriter,
    segments: Sequence[Segment],
    *,
    key: str | None,
    reader: BlobReader,
    batches: Batches,
    store: Callable[[pg.CopyBatch], None],
    stats: IncrementalStats,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the stream in segment order: kept blobs referenced, unchanged keys' records copied
    from the previous blobs, the rest read from the database in ONE query for all ranges (one
    scan however many stretches changed), split back into the ranges by key."""
    reads = [segment for segment in segments if isinstance(segment, Read)]
    stats.add(kept=len(segments) - len(reads), reads=len(reads), bytes_kept=_kept_bytes(segments))
    if key is None or Read(None, None) in reads:
        if reads:
            pipelined(batches(()), store)
        else:
            for segment in segments:
                _keep(stream, segment, progress)  # type: ignore[arg-type]
        return
    rows = _RangeSplitter(batches(_key_ranges(key, reads)) if reads else iter(()))
    reader.start_writing()

    def actions() -> Iterator[Callable[[], object]]:
        copied = _Copied(stream)
        for segment in segments:
            if isinstance(segment, Emit):
                for blob in segment.blobs:
                    if (action := copied.add(*reader.span(blob, segment.key), segment.key)) is not None:
                        yield action
                continue
            if (action := copied.flush()) is not None:
                yield action
            if isinstance(segment, Keep):
                yield partial(_keep, stream, segment, progress)
            else:
                yield from (partial(store, part) for part in rows.below(segment.before))
        if (action := copied.flush()) is not None:
            yield action
        rows.finish()

    pipelined(actions(), _run)


# Records copied from the previous blobs are added to the stream in buffers of about this size.
COPIED_BUFFER_BYTES = 1024 * 1024


class _Copied:
    """Consecutive copied records, added to the stream as one buffer (a table of one row per key,
    ``agents`` or ``block``, copies thousands of keys around its changes: one stream addition,
    handed to the storing thread, per key cost more than the copying)."""

    def __init__(self, stream: StreamWriter) -> None:
        self._stream = stream
        self._data: list[bytes] = []
        self._keys: list[bytes] = []
        self._size = 0

    def add(self, data: bytes, count: int, key: str) -> Callable[[], object] | None:
        """Hold ``count`` records of ``key``; a full buffer comes back as the action adding it."""
        self._data.append(data)
        self._keys += [key.encode()] * count
        self._size += len(data)
        return self.flush() if self._size >= COPIED_BUFFER_BYTES else None

    def flush(self) -> Callable[[], object] | None:
        """The action adding what is held (None when nothing is)."""
        if not self._data:
            return None
        action = partial(self._stream.add, b"".join(self._data), self._keys)
        self._data, self._keys, self._size = [], [], 0
        return action


# Keys listed in one read's condition, at most (more: the ranges' bounds instead).
MAX_LISTED_KEYS = 5_000


def _key_ranges(key: str, reads: Sequence[Read]) -> list[pg.KeyRange]:
    """The reads as conditions: when the plan listed every range's keys and they are few, ONE list
    of them all (the server checks a row with one hash lookup; an OR of short lists, or of
    ranges, compares each row with every range in turn), else the ranges' bounds."""
    listed = [key for read in reads for key in (read.keys or ())]
    if any(read.keys is None for read in reads) or len(listed) > MAX_LISTED_KEYS:
        return [pg.KeyRange(key, read.after, read.before) for read in reads]
    return [pg.KeyRange(key, values=tuple(listed))]


def _run(action: Callable[[], object]) -> None:
    action()


def _keep(stream: StreamWriter, segment: Keep, progress: Callable[[int], None] | None) -> None:
    blobs: list[BlobRef] = list(segment.blobs)  # type: ignore[arg-type]
    stream.reference(blobs)
    if progress:
        progress(sum(blob.raw_size for blob in blobs))


def _kept_bytes(segments: Sequence[Segment]) -> int:
    return sum(blob.raw_size for segment in segments if isinstance(segment, Keep) for blob in segment.blobs)  # type: ignore[attr-defined]


class _RangeSplitter:
    """Cuts one sorted COPY stream of several disjoint, ordered key ranges back into the ranges."""

    def __init__(self, batches: Iterator[pg.CopyBatch]) -> None:
        self._batches = batches
        self._pending: pg.CopyBatch | None = None

    def below(self, bound: str | None) -> Iterator[pg.CopyBatch]:
        """The next rows whose key sorts before ``bound`` (all that remain when None)."""
        limit = bound.encode() if bound is not None else None
        while (batch := self._next()) is not None:
            keys = batch.keys or []
            if limit is None or not keys or keys[-1] < limit:
                yield batch
                continue
            cut = bisect_left(keys, limit)
            head, self._pending = _split(batch, cut)
            if cut:
                yield head
            return

    def finish(self) -> None:
        batch = self._next()
        if batch is not None and batch.rows:
            raise DatabaseError("an incremental read returned rows outside the ranges it asked for")

    def _next(self) -> pg.CopyBatch | None:
        batch, self._pending = self._pending, None
        return batch if batch is not None else next(self._batches, None)


def _split(batch: pg.CopyBatch, cut: int) -> tuple[pg.CopyBatch, pg.CopyBatch]:
    """The batch's first ``cut`` lines and the rest (its lines handed on when it has them)."""
    keys, lines = batch.keys or [], batch.lines
    if lines is None:
        offset = 0
        for _ in range(cut):
            offset = batch.data.index(b"\n", offset) + 1
        head, tail = None, None
    else:
        head, tail = lines[:cut], lines[cut:]
        offset = sum(map(len, head)) + cut
    return (
        pg.CopyBatch(batch.data[:offset], cut, keys[:cut], lines=head),
        pg.CopyBatch(batch.data[offset:], batch.rows - cut, keys[cut:], lines=tail),
    )
