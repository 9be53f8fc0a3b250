"""``agents list``: the agents of a snapshot (its manifest's catalog) or of the live database."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import psycopg
from pydantic import BaseModel

from lifeboat import pg
from lifeboat.errors import UsageError
from lifeboat.letta.catalog import CATALOG_SQL, AgentEntry, catalog_from_rows
from lifeboat.letta.locate import enter_letta_schema
from lifeboat.ops import snapshot_layout as layout
from lifeboat.repo.repository import Repository


class AgentList(BaseModel):
    source: str  # "snapshot" or "database"
    snapshot: str | None = None
    snapshot_time: str | None = None
    database: str | None = None
    agents: list[AgentEntry]


def filter_agents(entries: list[AgentEntry], name: str | None, tag: str | None) -> list[AgentEntry]:
    """Agents whose name matches the glob ``name`` and that carry ``tag`` (either may be None)."""
    return [
        entry
        for entry in entries
        if (name is None or fnmatchcase(entry.name, name)) and (tag is None or tag in entry.tags)
    ]


def snapshot_agents(
    repo: Repository, snapshot_ref: str = "latest", *, name: str | None = None, tag: str | None = None
) -> AgentList:
    """From the manifest only: no blob is read."""
    snapshot = repo.load_snapshot(snapshot_ref)
    letta = layout.letta_document(snapshot)
    if not letta.letta or letta.agents is None:
        reason = letta.warning or "it holds no Letta agent catalog"
        raise UsageError(f"snapshot {snapshot.short_id} cannot list agents: {reason}")
    entries = letta.agents
    return AgentList(
        source="snapshot",
        snapshot=snapshot.id,
        snapshot_time=snapshot.time.isoformat(),
        agents=filter_agents(entries, name, tag),
    )


def database_agents(dsn: str, *, name: str | None = None, tag: str | None = None) -> AgentList:
    """The same catalog, computed on the live database (one read-only query)."""
    with pg.connection(dsn) as conn:
        rows = _catalog_rows(conn)
    return AgentList(
        source="database",
        database=pg.describe_target(dsn),
        agents=filter_agents(catalog_from_rows(rows), name, tag),
    )


def _catalog_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        enter_letta_schema(conn)
        return conn.execute(CATALOG_SQL).fetchall()
