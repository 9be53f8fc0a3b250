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

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg

from lifeboat import pg
from lifeboat.errors import CorruptRepository, SnapshotNotFound
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.incremental_plan import Keep, Read, Segment, plan_table
from lifeboat.pg.changes import ChangeToken, key_counts, table_count
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.repo.manifest import BlobRef, Snapshot, Stream
from lifeboat.repo.repository import Repository
from lifeboat.repo.writer import RepositoryWriter, StreamWriter

# How many of the newest manifests to look at for a parent (each is read and decrypted).
PARENT_CANDIDATES = 8

ReadRange = Callable[[pg.KeyRange | None], None]  # streams rows (all, or one key range) into the stream


@dataclass
class Parent:
    """The earlier snapshot an incremental backup follows."""

    snapshot: Snapshot
    token: ChangeToken  # the parent's
    now: ChangeToken  # the current backup's
    schema: DatabaseSchema
    streams: dict[tuple[str, str], tuple[Stream, layout.TableStream]]


@dataclass
class IncrementalStats:
    """What the incremental shortcut saved, for the backup's summary."""

    parent: str | None = None
    why_not: str | None = None  # why there is no parent (None: there is one)
    tables_kept: int = 0  # tables whose stream is entirely the parent's blobs
    tables_partly_read: int = 0
    tables_read: int = 0  # read whole
    bytes_kept: int = 0  # plaintext bytes referenced instead of read
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None and not k.startswith("_")}

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
            snapshot = repo.read_snapshot(snapshot_id)
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
            return Parent(snapshot, earlier, token, layout.schema_document(snapshot), streams), None
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


def plan(
    conn: psycopg.Connection,
    writer: RepositoryWriter,
    parent: Parent,
    table: TableDef,
    key: str | None,
    previous: Stream,
) -> list[Segment]:
    """The segments that rebuild ``table``'s stream from ``previous`` and what changed since."""
    if key is None:
        rows, changed = table_count(conn, table.qualified, parent.token)
        usable = all(writer.can_reference(blob) for blob in previous.blobs)
        if not changed and rows == previous.records and usable:
            return [Keep(previous.blobs)] if previous.blobs else []
        return [Read(None, None)]
    counts = key_counts(conn, table.qualified, key, parent.token)
    if counts is None:
        return [Read(None, None)]
    return plan_table(previous.blobs, counts, writer.can_reference)  # type: ignore[arg-type]


def write_segments(
    stream: StreamWriter,
    segments: Iterable[Segment],
    key: str | None,
    read: ReadRange,
    stats: IncrementalStats,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Reference kept blobs and read the rest, in stream order; count what was kept (and report
    kept bytes to ``progress`` as if read)."""
    kept = reads = bytes_kept = 0
    for segment in segments:
        if isinstance(segment, Keep):
            blobs: list[BlobRef] = list(segment.blobs)  # type: ignore[arg-type]
            stream.reference(blobs)
            kept += 1
            bytes_kept += sum(blob.raw_size for blob in blobs)
            if progress:
                progress(sum(blob.raw_size for blob in blobs))
        else:
            whole = segment.after is None and segment.before is None
            read(None if whole or key is None else pg.KeyRange(key, segment.after, segment.before))
            stream.cut()
            reads += 1
    stats.add(kept=kept, reads=reads, bytes_kept=bytes_kept)
