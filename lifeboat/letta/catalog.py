"""The agent catalog a snapshot manifest carries: what `snapshots`, `agents list` and `diff` read first."""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic.dataclasses import dataclass


@dataclass(slots=True)
class AgentEntry:
    """One agent of the catalog. A validated dataclass with slots, not a model: a 20,000-agent
    catalog holds 20,000 of them (~1,670 bytes each as models, ~520 so, strings included)."""

    id: str
    name: str
    organization_id: str | None = None
    agent_type: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    messages: int = 0
    passages: int = 0
    blocks: int = 0
    last_activity: str | None = None
    last_run_status: str | None = None
    digest: str = ""  # changes when the agent's memory, messages or config change


@cache
def entry_adapter() -> TypeAdapter[AgentEntry]:
    """Validates one entry (``validate_python``, ``validate_json``) and prints it (``dump_python``)."""
    return TypeAdapter(AgentEntry)


@cache
def entries_adapter() -> TypeAdapter[list[AgentEntry]]:
    return TypeAdapter(list[AgentEntry])


# One query, correlated subqueries, run inside the backup's snapshot so the catalog matches the
# data exactly. Each subquery is an index probe or an index-only range per agent; at 5,000 agents
# (1M messages, 250k runs) it costs ~0.37 s of server CPU, and set-based rewrites (GROUP BY per
# table, DISTINCT ON for the newest run) measured the same or more (DISTINCT ON over runs: 0.17 s
# against 0.08-0.12 s for the per-agent bitmap probe of ~50 rows and its top-1 sort).
CATALOG_SQL = """
SELECT a.id, a.name, a.organization_id, a.agent_type,
  COALESCE((SELECT array_agg(t.tag ORDER BY t.tag) FROM agents_tags t WHERE t.agent_id = a.id), '{}') AS tags,
  (SELECT count(*) FROM messages m WHERE m.agent_id = a.id) AS messages,
  (SELECT count(*) FROM archives_agents aa JOIN archival_passages p ON p.archive_id = aa.archive_id
    WHERE aa.agent_id = a.id) AS passages,
  (SELECT count(*) FROM blocks_agents ba WHERE ba.agent_id = a.id) AS blocks,
  GREATEST(a.updated_at, (SELECT max(m.created_at) FROM messages m WHERE m.agent_id = a.id))::text AS last_activity,
  (SELECT r.status FROM runs r WHERE r.agent_id = a.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS last_run,
  md5(concat_ws('|', a.updated_at::text, a.message_ids::text,
    (SELECT string_agg(b.id || ':' || b.label || ':' || md5(b.value), ',' ORDER BY b.id)
       FROM blocks_agents ba JOIN block b ON b.id = ba.block_id WHERE ba.agent_id = a.id),
    (SELECT max(m.sequence_id)::text FROM messages m WHERE m.agent_id = a.id))) AS digest
FROM agents a
ORDER BY a.id
"""


# Before Letta 0.12 (migration 567e9fe06270) there is no ``runs`` table: a run is a ``jobs`` row
# with job_type 'run' whose metadata names the agent.
_LAST_RUN = (
    "(SELECT r.status FROM runs r WHERE r.agent_id = a.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1)"
)
# The agent is inside JSON, so no index finds an agent's jobs: a correlated subquery would scan
# every run job once per agent (agents x jobs). One pass over the run jobs instead, newest first
# per agent (the same order and tie-break as _LAST_RUN), joined to the agents.
_LEGACY_RUNS_JOIN = """LEFT JOIN (
  SELECT DISTINCT ON (j.metadata_::jsonb ->> 'agent_id') j.metadata_::jsonb ->> 'agent_id' AS agent_id, j.status
  FROM jobs j WHERE j.job_type = 'run'
  ORDER BY j.metadata_::jsonb ->> 'agent_id', j.created_at DESC, j.id DESC) lr ON lr.agent_id = a.id
"""
_FROM_AGENTS = "FROM agents a\n"


def catalog_sql(tables: set[str]) -> str:
    """:data:`CATALOG_SQL` for a schema with these tables (legacy runs before 0.12)."""
    if "runs" in tables or "jobs" not in tables:
        return CATALOG_SQL
    return CATALOG_SQL.replace(_LAST_RUN, "lr.status").replace(_FROM_AGENTS, _FROM_AGENTS + _LEGACY_RUNS_JOIN)


# What an agent's entry is computed from (every table CATALOG_SQL reads; a test keeps the two in
# step), for a backup that takes the entries of agents whose rows provably did not change from its
# parent snapshot (lifeboat.ops.incremental_catalog). Tables holding the agent's own rows, by the
# column naming the agent:
CATALOG_AGENT_ROWS = {
    "agents": "id",
    "agents_tags": "agent_id",
    "messages": "agent_id",
    "archives_agents": "agent_id",
    "blocks_agents": "agent_id",
    "runs": "agent_id",
}
# Tables whose rows an entry reaches through a linking table above: table -> (its column, the
# linking table, the linking table's column holding that value).
CATALOG_LINKED_ROWS = {
    "block": ("id", "blocks_agents", "block_id"),
    "archival_passages": ("archive_id", "archives_agents", "archive_id"),
}
_ORDER = "FROM agents a\nORDER BY a.id\n"
# Entries computed alike have the same digest; change the version when catalog_from_rows changes.
_CATALOG_VERSION = "lifeboat agent catalog 1\n"


def catalog_query_digest(statement: str) -> str:
    """What identifies how a catalog was computed (the letta document's ``catalog_query``): an entry
    may be reused only by a backup that would compute it the same way."""
    return hashlib.sha256((_CATALOG_VERSION + statement).encode()).hexdigest()[:32]


def catalog_sql_for_agents(statement: str) -> str | None:
    """``statement`` (a :func:`catalog_sql`) restricted to the agents whose ids are its one
    parameter (a list), in the same order; None when it cannot be restricted."""
    if statement.count(_ORDER) != 1 or "%" in statement:
        return None
    return statement.replace(_ORDER, "FROM agents a\nWHERE a.id = ANY(%s)\nORDER BY a.id\n")


def catalog_from_rows(rows: list[tuple[Any, ...]]) -> list[AgentEntry]:
    return [
        AgentEntry(
            id=row[0],
            name=row[1],
            organization_id=row[2],
            agent_type=row[3],
            tags=list(row[4] or []),
            messages=row[5],
            passages=row[6],
            blocks=row[7],
            last_activity=row[8],
            last_run_status=row[9],
            digest=row[10] or "",
        )
        for row in rows
    ]
