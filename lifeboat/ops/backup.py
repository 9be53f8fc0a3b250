"""backup: one consistent instant of a live Letta database into the repository.

A shared snapshot (one exported REPEATABLE READ snapshot, N worker connections) lets the
Letta server keep running. Each table is streamed in its entity-key order, cut into
content-defined blobs (deduplicated against everything already stored), and the snapshot's
manifest is written last, so an interrupted backup leaves no visible snapshot.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.letta.graph import stream_order
from lifeboat.letta.locate import find_letta_schema, use_letta_schema
from lifeboat.letta.source import describe_deployment
from lifeboat.ops import incremental, incremental_catalog
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.incremental_catalog import PROVING_TABLES
from lifeboat.ops.pipeline import pipelined
from lifeboat.pg.changes import read_change_token
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.repo.heap import fewer_collections
from lifeboat.repo.manifest import Snapshot, Stream
from lifeboat.repo.repository import Repository
from lifeboat.repo.writer import WriteStats

Progress = Callable[[int], None]  # called with bytes read from the database


@dataclass
class BackupResult:
    snapshot: Snapshot
    stats: WriteStats
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    incremental: incremental.IncrementalStats = field(default_factory=incremental.IncrementalStats)
    # From the catalog read (also in the manifest, where reading it back would parse every agent's entry).
    runs_in_flight: list[layout.RunInFlight] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "short_id": self.snapshot.short_id,
            "time": self.snapshot.time.isoformat(),
            "tags": self.snapshot.tags,
            "tables": len(self.snapshot.streams),
            "rows": sum(stream.records for stream in self.snapshot.streams),
            "raw_bytes": self.snapshot.raw_size(),
            "bytes_added": self.stats.bytes_added,
            "blobs_new": self.stats.blobs_new,
            "blobs_deduplicated": self.stats.blobs_deduplicated,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "incremental": self.incremental.summary(),
            "source": layout.source_document(self.snapshot).model_dump(mode="json"),
            "runs_in_flight": [run.model_dump(mode="json") for run in self.runs_in_flight],
        }


def table_order(table: TableDef) -> tuple[str | None, tuple[str, ...]]:
    """(zone-map key column, ORDER BY columns) for a table's stream."""
    columns = table.copy_columns
    order = stream_order(table.name, columns)
    if order is not None:
        return order.key, order.order_by
    key = table.primary_key or next(iter(table.unique_keys), [])
    return None, tuple(key)


def stream_encoding(schema: DatabaseSchema, table: TableDef, utc_iso_session: bool) -> dict[str, Any]:
    """The table stream's encoding attributes: binary COPY for tables with a vector column
    (docs/FORMAT.md §16.1), COPY TEXT for every other."""
    enums = {f"{e.schema_}.{e.name}" for e in schema.enums} | {str(e.qualified) for e in schema.enums}
    return layout.table_encoding(table, enums, utc_iso_session)


def estimate_bytes(schema: DatabaseSchema) -> int:
    """Bytes the COPY streams will roughly carry (heap pages), for the progress bar."""
    return sum(max(table.pages, 1) * 8192 for table in schema.tables)


def run_backup(
    repo: Repository,
    dsn: str,
    *,
    tags: list[str] | tuple[str, ...] = (),
    jobs: int = 2,
    progress: Progress | None = None,
    on_schema: Callable[[DatabaseSchema], None] | None = None,
    any_database: bool = False,
    on_lock_wait: Callable[[str], None] | None = None,
    full: bool = False,
) -> BackupResult:
    """Back up the database at ``dsn`` into ``repo`` under a shared lock; returns the new snapshot.

    A database without Letta's schema is refused (:class:`DatabaseError`, nothing written) unless
    ``any_database``: a backup of the wrong database would become ``latest`` and be restored.
    ``on_lock_wait`` hears, once per wait, that a copy waits for a table lock and on whom.
    Unless ``full``, rows unchanged since the newest earlier snapshot of the same database are
    not read again: that snapshot's blobs are referenced (``lifeboat.ops.incremental``).
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    changes = incremental.IncrementalStats()
    with repo.lock() as lock:
        with pg.SharedSnapshot(dsn) as snap, _watching_lock_waits(dsn, snap, on_lock_wait):
            snap.open_workers_ahead(jobs)  # while the schema is captured
            with snap.connection() as conn:
                schema = pg.capture_schema(conn)
                utc_iso = pg.prints_utc_iso(conn)
                token = read_change_token(conn)
                letta_schema = find_letta_schema(conn)
            if letta_schema is None and not any_database:
                raise DatabaseError(
                    f"database {schema.database.name} has no Letta schema (no schema holding Letta's agents "
                    "and alembic_version tables); nothing was backed up (pass --any-database to back it up anyway)"
                )
            timings["schema"] = time.monotonic() - started
            if on_schema:
                on_schema(schema)
            parent, changes.why_not = (None, "--full") if full else incremental.find_parent(repo, token)
            changes.parent = parent.snapshot_id if parent is not None else None
            # The agent catalog (a scan of messages and more) is read on the snapshot's own
            # connection while the workers copy (an incremental backup's waits for what the plans of
            # the tables it reads proved: lifeboat.ops.incremental_catalog). Leaving, the proofs are
            # finished first (the catalog never waits for copies that never ran), then the executor
            # waits for the catalog, so the snapshot's connection is never closed under it.
            with ThreadPoolExecutor(1, thread_name_prefix="lifeboat-describe") as background, changes.proofs:
                described = background.submit(
                    _describe_snapshot, snap, schema, _catalog_reader(parent, changes)
                )
                data_started = time.monotonic()
                with repo.writer() as writer, fewer_gc_passes():

                    def copy_table(conn: psycopg.Connection, table: TableDef) -> Stream:
                        key, order_by = table_order(table)
                        attributes = layout.TableStream(
                            schema=table.schema_,
                            table=table.name,
                            columns=table.copy_columns,
                            key=key,
                            order_by=list(order_by),
                            **stream_encoding(schema, table, utc_iso),
                        )
                        stream = writer.open_stream(
                            layout.table_stream_name(table.schema_, table.name),
                            attributes.model_dump(by_alias=True),
                            # blobs end where the key changes: an incremental backup rebuilds
                            # only the blobs of changed keys (binary streams are kept or read whole)
                            key_aligned=key is not None and not attributes.binary,
                        )

                        def store(batch: pg.CopyBatch) -> None:
                            stream.add(batch.data, batch.keys, batch.ends, batch.lines)
                            if progress:
                                progress(len(batch.data))

                        def batches(key_ranges: Sequence[pg.KeyRange] = ()) -> Iterator[pg.CopyBatch]:
                            return pg.copy_out(
                                conn,
                                table.qualified,
                                table.copy_columns,
                                order_by=order_by,
                                key_column=key,
                                key_ranges=key_ranges,
                                binary=attributes.binary,
                                key_runs=pg.keys_come_in_runs(table, key),
                            )

                        previous = incremental.previous_stream(parent, schema, table, attributes)
                        if parent is None or previous is None:
                            pipelined(batches(), store)
                            changes.add(kept=0, reads=1, bytes_kept=0)
                        else:
                            incremental.copy_table(
                                conn, repo, writer, parent, table, attributes, previous, stream,
                                batches=batches, store=store, stats=changes, progress=progress,
                            )  # fmt: skip
                        return stream.close()

                    try:
                        streams = snap.map(copy_table, schema.tables_biggest_first(), jobs=jobs)
                    finally:
                        changes.proofs.finish()  # the catalog may use what the copies proved
                timings["data"] = time.monotonic() - data_started
                source, letta = described.result()
            source.change_token = token.to_document() if token is not None else None
        documents = layout.documents(source, letta, schema, timings)
        snapshot = Snapshot(tags=sorted(set(tags)), streams=streams, documents=documents)
        lock.ensure_held()  # a lost lock could mean a prune removed our fresh packs
        repo.save_snapshot(snapshot)
    return BackupResult(
        snapshot, writer.stats, time.monotonic() - started, timings, changes, letta.runs_in_flight
    )


class _CopyCollector:
    """The collector setting shared by the copies running in this process (see ``fewer_gc_passes``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.copies = 0
        self.threshold = gc.get_threshold()


_collector = _CopyCollector()


@contextlib.contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the copy with far fewer passes of Python's cycle collector.

    When libpq's rows (GC-tracked memoryviews) were kept until their batch of ~1 MB was joined,
    a young collection at the default threshold (700) ran twice a batch, promoting those rows,
    and the promotions kept triggering full collections that walk every object alive, the
    imported modules first: 10-12 % of a backup's CPU (perf, 1,000 and 3,000 agents). Rows are
    now copied and freed as they arrive (``pg.copystream``); this setting was not measured again
    since, and the start-up heap still need not be walked at all. Objects alive at the start are
    frozen (not walked until the last copy ends) and a young pass waits for 50,000 new
    containers. Cycles made meanwhile are still collected, in fewer passes. Concurrent copies in
    one process share the setting; the last one to end restores the collector as it was.
    """
    with _collector.lock:
        if _collector.copies == 0:
            gc.freeze()
            _collector.threshold = fewer_collections()
        _collector.copies += 1
    try:
        yield
    finally:
        with _collector.lock:
            _collector.copies -= 1
            if _collector.copies == 0:
                gc.set_threshold(*_collector.threshold)
                gc.unfreeze()


def _watching_lock_waits(
    dsn: str, snap: pg.SharedSnapshot, on_lock_wait: Callable[[str], None] | None
) -> contextlib.AbstractContextManager[object]:
    if on_lock_wait is None:
        return contextlib.nullcontext()
    from lifeboat.pg.lock_waits import LockWaitWatcher

    return LockWaitWatcher(dsn, snap.backend_pids, lambda wait: on_lock_wait(wait.describe()))


# (query, the catalog statement, the Letta schema) -> the agent catalog
ReuseCatalog = Callable[[incremental_catalog.ParamQuery, str, str], list[AgentEntry]]


def _catalog_reader(
    parent: incremental.Parent | None, changes: incremental.IncrementalStats
) -> ReuseCatalog | None:
    """How an incremental backup reads its agent catalog: the parent's entries of the agents its
    table copies proved unchanged (``lifeboat.ops.incremental_catalog``); None: all by the server."""
    catalog = parent.catalog if parent is not None else None
    if catalog is None:
        return None

    def read(query: incremental_catalog.ParamQuery, statement: str, schema: str) -> list[AgentEntry]:
        def kept(count: int) -> None:
            changes.agents_kept = count

        return incremental_catalog.read_catalog(
            query, statement, catalog, lambda: changes.proofs.wait(schema, PROVING_TABLES), on_kept=kept
        )

    return read


def _describe_snapshot(
    snap: pg.SharedSnapshot, schema: DatabaseSchema, reuse: ReuseCatalog | None = None
) -> tuple[layout.SourceDocument, layout.LettaDocument]:
    with snap.connection() as conn:
        return _describe(conn, schema, reuse)


def _describe(
    conn: psycopg.Connection, schema: DatabaseSchema, reuse: ReuseCatalog | None = None
) -> tuple[layout.SourceDocument, layout.LettaDocument]:
    """The manifest's ``source`` and ``letta`` documents, read inside the snapshot."""
    info = pg.server_info(conn)
    letta_schema = find_letta_schema(conn)
    source = layout.SourceDocument(
        database=schema.database.name,
        server_version=info.version,
        server_version_num=info.version_num,
        letta_schema=letta_schema,
    )
    if letta_schema is None:
        return source, layout.LettaDocument(letta=False)
    tables = {t.name for t in schema.tables if t.schema_ == letta_schema}

    def query(statement: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        # A savepoint, so a failing Letta query cannot abort the snapshot's transaction.
        with conn.transaction():
            use_letta_schema(conn, letta_schema)
            return conn.execute(statement, params).fetchall()

    if reuse is None:
        letta = describe_deployment(query, tables)
    else:
        letta = describe_deployment(
            query, tables, lambda _query, statement: reuse(query, statement, letta_schema)
        )
    source.letta_revision = letta.revision
    source.letta_release = letta.release
    return source, letta
