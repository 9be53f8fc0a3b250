"""Where a migration reads agents from: a snapshot in the repository, or the live database.

Both give the same thing: the agent catalog and a :data:`~lifeboat.letta.subgraph.RowSource`
(rows as COPY TEXT lines), so the rest of the migration does not care where rows came from.
The live database is read inside one ``REPEATABLE READ READ ONLY`` transaction: one instant of
the database even while the Letta server keeps writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from lifeboat import pg
from lifeboat.errors import UsageError
from lifeboat.letta.catalog import CATALOG_SQL, AgentEntry, catalog_from_rows
from lifeboat.letta.locate import enter_letta_schema
from lifeboat.letta.subgraph import RowSource, TableRows
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.source import SnapshotSource
from lifeboat.ops.migrate_rows import COLUMNS
from lifeboat.pg import catalog as pg_catalog
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository, split_records


@dataclass
class Origin:
    """An opened source of agents: its catalog, its rows, and how to name it in the report."""

    kind: str  # "snapshot" or "database"
    label: str  # snapshot id, or user@host:port/db
    entries: list[AgentEntry]
    rows: RowSource
    revision: str | None = None
    forget: Callable[[], None] = lambda: None  # drop what was cached for the previous batch
    parallel: bool = False  # batches may be read in forked worker processes (not a live connection)


def snapshot_origin(repo: Repository, snapshot_ref: str) -> Origin:
    snapshot = repo.load_snapshot(snapshot_ref)
    letta = layout.letta_document(snapshot)
    if not letta.letta:
        raise UsageError(f"snapshot {snapshot.short_id} cannot be migrated: it is not a Letta database")
    revision = layout.source_document(snapshot).letta_revision
    source = BatchSnapshotSource(repo, snapshot)
    # A release whose columns the backup's catalog query did not know has no catalog: read the rows.
    entries = letta.agents if letta.agents is not None else entries_from_rows(source)
    return Origin("snapshot", snapshot.id, entries, source, revision, forget=source.forget, parallel=True)


class BatchSnapshotSource(SnapshotSource):
    """The agent-restore snapshot source, whose blob cache can be dropped between batches: a
    migration of every agent would otherwise end up holding the whole snapshot in memory.

    Passage tables are one exception: they are keyed by archive (or file), whose ids are in no
    relation to the agent order, so every batch needs some rows of most of their blobs, and their
    rows are mostly embeddings, which a migration never reads. Their blobs are read once each and
    kept projected to the columns the migration uses (the others NULL): a few hundred bytes a
    passage instead of tens of kilobytes, and no blob decrypted twice. The entity tables looked
    up by id (blocks, tools, archives, folders) are kept whole for the same reason. What is kept
    grows with the deployment (about 4 KB an agent for the benchmark's shapes), not with a batch.
    """

    def __init__(self, repo: Repository, snapshot: Snapshot) -> None:
        super().__init__(repo, snapshot)
        self._projected: dict[str, list[bytes]] = {}  # blob id -> its projected records

    def __call__(self, table: str, key: str, keys: set[str] | None) -> TableRows | None:
        found = self.streams.get(table)
        if table not in PROJECTED or found is None:
            return super().__call__(table, key, keys)
        stream, attributes = found
        columns = list(attributes.columns)
        wanted = PROJECTED[table]
        # Projected rows are COPY TEXT lines whatever the stream's encoding; whole rows keep it.
        view = layout.text_view(attributes) if wanted is None else None
        if keys is not None and not keys:
            return TableRows(table, columns, view=view)
        zoned = keys is not None and attributes.key == key
        refs = stream.blobs_covering(keys if zoned else None)
        kept = [n for n, column in enumerate(columns) if wanted is None or column in wanted]
        missing = [
            blob_id for blob_id in dict.fromkeys(ref.id for ref in refs) if blob_id not in self._projected
        ]
        for blob_id, data in self.repo.read_blobs(missing):
            records = TableRows(
                table, columns, layout.split_records(attributes, data), layout.text_view(attributes)
            )
            self._projected[blob_id] = (
                records.lines if wanted is None else [_project(records, line, kept) for line in records.lines]
            )
        rows = TableRows(table, columns, [line for ref in refs for line in self._projected[ref.id]], view)
        return rows if keys is None or key not in columns else rows.where_in(key, keys)

    def forget(self) -> None:
        self._blobs.clear()


#: Tables kept across batches: table -> the columns kept (None: all). Passages (see
#: BatchSnapshotSource), and the small entity tables looked up by id, whose ids are as unrelated to
#: the agent order (every batch would read all of their blobs again).
PROJECTED: dict[str, tuple[str, ...] | None] = {
    "archival_passages": COLUMNS["archival_passages"],
    "source_passages": COLUMNS["source_passages"],
    "block": None,
    "tools": None,
    "archives": None,
    "sources": None,
}


def _project(rows: TableRows, line: bytes, kept: list[int]) -> bytes:
    """A COPY TEXT record with only the fields at ``kept`` (the others ``\\N``, NULL)."""
    out = [b"\\N"] * len(rows.columns)
    for n, value in zip(kept, rows.fields_at(line, kept), strict=True):
        out[n] = value
    return b"\t".join(out) + b"\n"


def entries_from_rows(rows: RowSource) -> list[AgentEntry]:
    """A minimal agent catalog (id, name, type, tags) from the ``agents`` and ``agents_tags`` rows."""
    agents = rows("agents", "id", None)
    if agents is None:
        raise UsageError("the source has no agents table")
    tags: dict[str, list[str]] = {}
    for record in (rows("agents_tags", "agent_id", None) or TableRows("agents_tags", [])).records():
        tags.setdefault(record.get("agent_id") or "", []).append(record.get("tag") or "")
    entries = [
        AgentEntry(
            id=record["id"] or "",
            name=record.get("name") or "",
            organization_id=record.get("organization_id"),
            agent_type=record.get("agent_type"),
            tags=sorted(tags.get(record["id"] or "", [])),
        )
        for record in agents.records()
    ]
    return sorted(entries, key=lambda entry: entry.id)


@contextlib.contextmanager
def database_origin(dsn: str) -> Iterator[Origin]:
    """The live database, read in one read-only snapshot transaction for as long as the block runs."""
    with pg.connection(dsn) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        schema = enter_letta_schema(conn)
        revision_row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        source = DatabaseSource(conn, schema)
        entries = _database_catalog(conn, source)
        yield Origin(
            "database",
            pg.describe_target(dsn),
            entries,
            source,
            revision_row[0] if revision_row else None,
        )


def _database_catalog(conn: psycopg.Connection[Any], source: DatabaseSource) -> list[AgentEntry]:
    """The agent catalog; for a release whose columns the catalog query does not know, the rows."""
    try:
        with conn.transaction():  # a savepoint: a failing query must not end the read transaction
            return catalog_from_rows(conn.execute(CATALOG_SQL).fetchall())
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        return entries_from_rows(source)


class DatabaseSource:
    """A RowSource over a live connection: ``COPY (SELECT … WHERE key = ANY(keys)) TO STDOUT``, so
    rows arrive in exactly the text form a snapshot stores them in."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self._columns: dict[str, list[str]] | None = None

    def columns(self, table: str) -> list[str] | None:
        if self._columns is None:
            tables = pg_catalog.columns(self.conn, self.schema)
            self._columns = {name: [c.name for c in cols] for name, cols in tables.items()}
        return self._columns.get(table)

    def __call__(self, table: str, key: str, keys: set[str] | None) -> TableRows | None:
        columns = self.columns(table)
        if columns is None:
            return None
        if keys is not None and not keys:
            return TableRows(table, columns)
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        query = sql.SQL("SELECT {} FROM {}").format(names, sql.Identifier(self.schema, table))
        params: tuple[Any, ...] = ()
        if keys is not None and key in columns:
            query = sql.SQL("{} WHERE {}::text = ANY(%s)").format(query, sql.Identifier(key))
            params = (sorted(keys),)
        data = bytearray()
        with self.conn.cursor() as cursor:
            statement = sql.SQL("COPY ({}) TO STDOUT").format(query)
            with cursor.copy(statement, params) as copy:
                for chunk in copy:
                    data += chunk
        return TableRows(table, columns, split_records(bytes(data)) if data else [])
