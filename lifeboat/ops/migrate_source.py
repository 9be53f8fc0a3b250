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
from lifeboat.pg import catalog as pg_catalog
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


def snapshot_origin(repo: Repository, snapshot_ref: str) -> Origin:
    snapshot = repo.load_snapshot(snapshot_ref)
    letta = layout.letta_document(snapshot)
    if not letta.letta:
        raise UsageError(f"snapshot {snapshot.short_id} cannot be migrated: it is not a Letta database")
    revision = layout.source_document(snapshot).letta_revision
    source = BatchSnapshotSource(repo, snapshot)
    # A release whose columns the backup's catalog query did not know has no catalog: read the rows.
    entries = letta.agents if letta.agents is not None else entries_from_rows(source)
    return Origin("snapshot", snapshot.id, entries, source, revision, forget=source.forget)


class BatchSnapshotSource(SnapshotSource):
    """The agent-restore snapshot source, whose blob cache can be dropped between batches: a
    migration of every agent would otherwise end up holding the whole snapshot in memory."""

    def forget(self) -> None:
        self._blobs.clear()


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
