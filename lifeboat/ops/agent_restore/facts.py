"""What the live database holds, gathered once, inside the apply transaction, before anything is
decided: the shape of its Letta schema (:class:`LiveSchema`) and, for the agents and entities of
one subgraph, the facts the decisions need (:class:`LiveFacts`).

The facts come from a fixed handful of set-based statements whatever the size of the subgraph:
the agents' rows (locked ``FOR UPDATE`` when the restore will write them), their active runs, the
live organization of every entity, the live agents outside the restored set that use each entity,
and the live rows sharing an entity's natural key. :func:`lifeboat.ops.agent_restore.plan.decide`
then decides from these facts alone, without the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import UnsafeRestore
from lifeboat.letta.locate import find_letta_schema
from lifeboat.letta.runs import ACTIVE_RUN_STATUSES
from lifeboat.letta.subgraph import ENTITIES, USERS, Subgraph
from lifeboat.ops.agent_restore.report import Options, SharedPolicy
from lifeboat.pg import catalog
from lifeboat.pg.catalog import ForeignKey

# -- the schema -----------------------------------------------------------------------------------


@dataclass
class LiveSchema:
    """What the apply needs to know about the live Letta schema."""

    schema: str
    columns: dict[str, dict[str, bool]]  # table -> column -> NOT NULL
    primary_keys: dict[str, list[str]]
    foreign_keys: tuple[ForeignKey, ...]
    revision: str | None
    types: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> column -> format_type
    indexed: dict[str, set[str]] = field(default_factory=dict)  # table -> columns an index starts with

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def fks_of(self, table: str) -> list[ForeignKey]:
        return [fk for fk in self.foreign_keys if fk.table == table]


def live_schema(conn: psycopg.Connection[Any]) -> LiveSchema:
    schema = find_letta_schema(conn)
    if schema is None:
        raise UnsafeRestore("the target database has no Letta schema; restore the whole snapshot instead")
    described = catalog.columns(conn, schema)
    columns = {
        table: {c.name: c.not_null for c in cols if not c.generated} for table, cols in described.items()
    }
    types = {table: {c.name: c.type for c in cols} for table, cols in described.items()}
    if "agents" not in columns:
        raise UnsafeRestore(f"schema {schema} of the target database has no agents table")
    keys = {table: list(cols) for table, cols in catalog.primary_keys(conn, schema).items()}
    revision = None
    if "alembic_version" in columns:
        row = conn.execute(
            sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(schema, "alembic_version"))
        ).fetchone()
        revision = row[0] if row else None
    indexed = catalog.leading_index_columns(conn, schema)
    return LiveSchema(schema, columns, keys, catalog.foreign_keys(conn, schema), revision, types, indexed)


# -- the facts ------------------------------------------------------------------------------------


@dataclass
class LiveFacts:
    """What the live database holds about one subgraph, as the decisions need it.

    Per entity kind (``block``, ``tool``...): ``orgs`` maps each entity id that exists live to its
    live organization (None where the table has none); ``used_by`` maps an entity id to how many
    live agents outside the restored set use it now, and ``users`` to those agents, gathered only
    when the restore overwrites shared rows and reports whom that affects (a tool every agent has
    is used by every other agent of the deployment: listing them grew with it); ``matches`` maps
    an entity id to the live row with the same natural key in the target organization (another
    id), when there is one.
    """

    tables: frozenset[str] = frozenset()  # tables of the live Letta schema
    present: set[str] = field(default_factory=set)  # restored agents that exist live now
    active_runs: list[tuple[str, str, str]] = field(default_factory=list)  # (agent, run, status)
    orgs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    used_by: dict[str, dict[str, int]] = field(default_factory=dict)
    users: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    matches: dict[str, dict[str, str]] = field(default_factory=dict)

    def busy(self) -> str | None:
        """Why an in-place restore must not go ahead now (an agent has an active run), or None."""
        if not self.active_runs:
            return None
        agent_id, run_id, status = self.active_runs[0]
        return f"agent {agent_id} has {len(self.active_runs)} active run(s) (run {run_id} is {status})"


def gather(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    graph: Subgraph,
    options: Options,
    *,
    lock: bool,
    runs: bool,
) -> LiveFacts:
    """The facts about ``graph`` in one pass. ``lock``: lock the agents' live rows until commit
    (Letta's own writes to them, such as ``message_ids`` updates, wait); ``runs``: look for their
    active runs."""
    agents = sorted(graph.agent_ids)
    kinds = _entity_ids(live, graph)
    facts = LiveFacts(tables=frozenset(live.columns))
    facts.present = _present_agents(conn, live, agents, lock=lock)
    if runs:
        facts.active_runs = _active_runs(conn, live, agents)
    facts.orgs = _live_orgs(conn, live, kinds)
    listed = options.shared is SharedPolicy.OVERWRITE
    facts.used_by, facts.users = _outside_users(conn, live, kinds, agents, listed=listed)
    facts.matches = _natural_matches(conn, live, graph, kinds, options.org)
    return facts


def _entity_ids(live: LiveSchema, graph: Subgraph) -> dict[str, list[str]]:
    """Per entity kind with rows in the snapshot and a live table: the ids the subgraph holds."""
    kinds = {}
    for kind, entity in ENTITIES.items():
        ids = sorted(graph.entities[kind])
        if ids and graph.rows(entity.table) is not None and entity.table in live.columns:
            kinds[kind] = ids
    return kinds


def _present_agents(
    conn: psycopg.Connection[Any], live: LiveSchema, agents: list[str], *, lock: bool
) -> set[str]:
    query = sql.SQL("SELECT id FROM {} WHERE id = ANY(%s){}").format(
        live.table("agents"), sql.SQL(" FOR UPDATE") if lock else sql.SQL("")
    )
    return {row[0] for row in conn.execute(query, (agents,))}


def _active_runs(
    conn: psycopg.Connection[Any], live: LiveSchema, agents: list[str]
) -> list[tuple[str, str, str]]:
    query = sql.SQL(
        "SELECT agent_id, id, status FROM {} WHERE agent_id = ANY(%s) AND status = ANY(%s) ORDER BY created_at"
    ).format(live.table("runs"))
    return [(str(a), str(r), str(s)) for a, r, s in conn.execute(query, (agents, list(ACTIVE_RUN_STATUSES)))]


Part = tuple[sql.Composable, list[Any]]  # one SELECT and its parameters


def _union(conn: psycopg.Connection[Any], parts: list[Part]) -> list[tuple[Any, ...]]:
    """Run ``parts`` (each a SELECT with its parameters) as one ``UNION ALL`` statement."""
    if not parts:
        return []
    query = sql.SQL(" UNION ALL ").join(sql.SQL("({})").format(part) for part, _ in parts)
    params = [param for _, part_params in parts for param in part_params]
    return conn.execute(query, params).fetchall()


def _live_orgs(
    conn: psycopg.Connection[Any], live: LiveSchema, kinds: dict[str, list[str]]
) -> dict[str, dict[str, str | None]]:
    parts: list[Part] = []
    for kind, ids in kinds.items():
        table = ENTITIES[kind].table
        org = sql.SQL("organization_id") if "organization_id" in live.columns[table] else sql.SQL("NULL")
        query = sql.SQL("SELECT {}::text, id::text, {}::text FROM {} WHERE id = ANY(%s)").format(
            sql.Literal(kind), org, live.table(table)
        )
        parts.append((query, [ids]))
    orgs: dict[str, dict[str, str | None]] = {kind: {} for kind in kinds}
    for kind, entity_id, org_id in _union(conn, parts):
        orgs[kind][entity_id] = org_id
    return orgs


def _outside_users(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    kinds: dict[str, list[str]],
    agents: list[str],
    *,
    listed: bool,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, list[str]]]]:
    """Per kind: entity id → how many live agents outside the restored set use it now
    (conversation blocks are used by the conversation's agent); and, when ``listed``, which."""
    parts: list[Part] = []
    for kind, ids in kinds.items():
        for table, column, agent_column in USERS[kind]:
            if table in live.columns:
                query = sql.SQL(
                    "SELECT {kind}::text, {col}::text, {agent}::text FROM {table} WHERE {col} = ANY(%s) "
                    "AND {agent} IS NOT NULL AND NOT ({agent} = ANY(%s))"
                ).format(
                    kind=sql.Literal(kind),
                    col=sql.Identifier(column),
                    agent=sql.Identifier(agent_column),
                    table=live.table(table),
                )
                parts.append((query, [ids, agents]))
        if kind == "block" and "blocks_conversations" in live.columns:
            query = sql.SQL(
                "SELECT 'block'::text, bc.block_id::text, c.agent_id::text FROM {bc} bc "
                "JOIN {conv} c ON c.id = bc.conversation_id "
                "WHERE bc.block_id = ANY(%s) AND NOT (c.agent_id = ANY(%s))"
            ).format(bc=live.table("blocks_conversations"), conv=live.table("conversations"))
            parts.append((query, [ids, agents]))
    counts: dict[str, dict[str, int]] = {kind: {} for kind in kinds}
    users: dict[str, dict[str, list[str]]] = {kind: {} for kind in kinds}
    if not parts:
        return counts, users
    union = sql.SQL(" UNION ALL ").join(sql.SQL("({})").format(part) for part, _ in parts)
    listing = sql.SQL("array_agg(DISTINCT u.a)" if listed else "NULL::text[]")
    query = sql.SQL(
        "SELECT u.k, u.e, count(DISTINCT u.a), {} FROM ({}) AS u(k, e, a) GROUP BY u.k, u.e"
    ).format(listing, union)
    params = [param for _, part_params in parts for param in part_params]
    for kind, entity_id, count, agent_ids in conn.execute(query, params):
        counts[kind][entity_id] = int(count)
        if agent_ids is not None:
            users[kind][entity_id] = list(agent_ids)
    return counts, users


def _natural_matches(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    graph: Subgraph,
    kinds: dict[str, list[str]],
    org: str | None,
) -> dict[str, dict[str, str]]:
    """Per named kind (tools and folders by name, identities by identifier key, each within an
    organization): snapshot entity id → a live row with the same natural key and another id.
    The organization of the key is ``org`` when given (a copy into another organization), else the
    snapshot row's own."""
    parts: list[Part] = []
    for kind, ids in kinds.items():
        entity = ENTITIES[kind]
        if not entity.named or any(column not in live.columns[entity.table] for column in entity.named):
            continue
        keys = _natural_keys(graph, kind, set(ids), org)
        if keys:
            parts.append(_match_query(live, kind, entity.table, entity.named, keys))
    matches: dict[str, dict[str, str]] = {kind: {} for kind in kinds}
    for kind, entity_id, live_id in _union(conn, parts):
        matches[kind][entity_id] = live_id
    return matches


def _natural_keys(graph: Subgraph, kind: str, ids: set[str], org: str | None) -> list[list[str | None]]:
    """``[id, key column values...]`` for each snapshot row of ``kind`` among ``ids``."""
    entity = ENTITIES[kind]
    rows = graph.rows(entity.table)
    keys = []
    for record in rows.records() if rows is not None else ():
        if record["id"] in ids:
            target_org = org or record.get("organization_id")
            values = [target_org if c == "organization_id" else record.get(c) for c in entity.named]
            keys.append([record["id"], *values])
    return keys


def _match_query(
    live: LiveSchema, kind: str, table: str, named: Iterable[str], keys: list[list[str | None]]
) -> Part:
    """One SELECT: (kind, snapshot id, smallest live id with the same key and another id)."""
    columns = list(named)
    aliases = [sql.Identifier(f"k{n}") for n in range(len(columns))]
    unnest = sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in range(len(columns) + 1))
    same = sql.SQL(" AND ").join(
        sql.SQL("t.{} IS NOT DISTINCT FROM k.{}").format(sql.Identifier(column), alias)
        for column, alias in zip(columns, aliases, strict=True)
    )
    query = sql.SQL(
        "SELECT {kind}::text, k.id, min(t.id::text) FROM unnest({unnest}) AS k(id, {aliases}) "
        "JOIN {table} t ON {same} WHERE t.id::text <> k.id GROUP BY k.id"
    ).format(
        kind=sql.Literal(kind),
        unnest=unnest,
        aliases=sql.SQL(", ").join(aliases),
        table=live.table(table),
        same=same,
    )
    params = [[key[n] for key in keys] for n in range(len(columns) + 1)]
    return query, params
