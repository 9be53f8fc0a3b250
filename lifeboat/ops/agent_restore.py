"""Agent-level restore: bring some agents back from a snapshot into a live Letta database.

1. **Read** the agents' subgraph (:mod:`lifeboat.letta.subgraph`) from the snapshot, fetching only
   the blobs whose zone maps may hold the needed keys (bytes read are counted and reported).
2. **Decide**, inside the apply transaction, what happens to each entity the agents point to
   (blocks, archives, tools, folders, identities, groups): written from the snapshot, kept as it
   is live, reused by a copy, matched by name... (see :class:`Action`).
3. **Apply** in ONE transaction: stage the rows in temporary tables, delete the live rows of the
   restored scope that the snapshot does not have (children first), upsert the snapshot's rows
   (parents first), fix references to rows that no longer exist, keep ``message_seq_id`` ahead,
   commit. While applying, Letta's own per-agent Redis lock is held and the agent rows are
   locked ``FOR UPDATE``; afterwards the agents' Redis keys are dropped.

In place, ids are kept. As a copy, every row owned by the copy gets a new id and every reference
is rewritten (:class:`~lifeboat.letta.subgraph.IdRemap`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field

from lifeboat import pg
from lifeboat.errors import DatabaseError, LifeboatError, UnsafeRestore, UsageError
from lifeboat.letta import redis_keys
from lifeboat.letta.catalog import AgentEntry
from lifeboat.letta.runs import ACTIVE_RUN_STATUSES
from lifeboat.letta.schema_shape import ForeignKey, capture_foreign_keys
from lifeboat.letta.source import letta_schema_name
from lifeboat.letta.subgraph import (
    AGENT,
    DEFERRED_COLUMNS,
    ENTITIES,
    MESSAGE_SEQUENCE,
    USERS,
    IdRemap,
    Subgraph,
    TableRows,
    TableSpec,
    all_specs,
    collect,
    copy_escape,
)
from lifeboat.ops.agents import filter_agents
from lifeboat.ops.restore import table_streams
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository, split_records
from lifeboat.settings import RedisTarget

FAULT_ENV = "LIFEBOAT_AGENT_RESTORE_FAULT"  # "N": fail after N tables applied; "N:kill": SIGKILL instead
LOCK_SECONDS = 60  # Letta uses 300 s; ours is extended as the apply goes, so a crash frees it sooner
LOCK_WAIT_SECONDS = 2.0


class Mode(StrEnum):
    IN_PLACE = "in-place"
    COPY = "copy"


class SharedPolicy(StrEnum):
    MISSING = "missing"  # restore shared rows only when they are missing (default)
    OVERWRITE = "overwrite"  # roll shared rows back too (other agents see the change)
    COPY = "copy"  # copy mode only: give the copy its own copies of shared blocks and archives


class Action(StrEnum):
    INSERT = "insert"  # missing live: written from the snapshot
    OVERWRITE = "overwrite"  # exists live: rolled back to the snapshot
    KEEP = "keep"  # exists live and shared: left as it is now
    COPY = "copy"  # written under a new id (copy mode)
    REUSE = "reuse"  # the copy points to the live row as it is
    MATCH = "match"  # missing by id, but a live row has the same name: references point to it
    SKIP = "skip"  # not restored (a copy does not join groups it does not manage)


WRITTEN = (Action.INSERT, Action.OVERWRITE, Action.COPY)


@dataclass(frozen=True)
class Options:
    mode: Mode = Mode.IN_PLACE
    shared: SharedPolicy = SharedPolicy.MISSING
    dry_run: bool = False
    force: bool = False
    org: str | None = None  # copy mode: target organization
    suffix: str = " (restored)"  # copy mode: appended to agent names


# -- reports --------------------------------------------------------------------------------------


class EntityDecision(BaseModel):
    kind: str
    id: str
    label: str = ""
    action: Action
    target_id: str | None = None  # the id written/pointed to, when it differs
    used_by: int = 0  # live agents outside the restored set using it now
    affects: list[str] = Field(default_factory=list)  # those of them that see a change (overwrite)


class TablePlan(BaseModel):
    table: str
    snapshot_rows: int = 0  # rows of the subgraph in the snapshot
    write: int = 0  # rows staged for writing after decisions
    remove: int = 0  # live rows of the restored scope the snapshot does not have (deleted)
    written: int | None = None  # rows actually inserted or changed (None in a dry run)


class AgentPlanEntry(BaseModel):
    id: str
    name: str
    new_id: str | None = None
    live: bool = False  # the agent exists in the live database now
    requested: bool = True  # False: pulled in (member of a group it manages)


class ReadStats(BaseModel):
    blobs: int = 0
    bytes: int = 0  # stored (compressed, encrypted) bytes fetched
    raw_bytes: int = 0
    snapshot_bytes: int = 0  # stored bytes of every distinct blob of the snapshot
    seconds: float = 0.0

    @property
    def share(self) -> float:
        return self.bytes / self.snapshot_bytes if self.snapshot_bytes else 0.0


class AgentRestoreReport(BaseModel):
    snapshot: str
    mode: Mode
    shared_policy: SharedPolicy
    dry_run: bool
    database: str
    agents: list[AgentPlanEntry]
    tables: list[TablePlan]
    entities: list[EntityDecision]
    read: ReadStats
    warnings: list[str] = Field(default_factory=list)
    refused: str | None = None  # dry run: why the real run would be refused
    redis: str | None = None  # what happened with Letta's Redis
    seconds: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["read"]["share"] = round(self.read.share, 5)
        data["seconds"] = round(self.seconds, 3)
        data["bytes_read"] = self.read.bytes
        data["snapshot_bytes"] = self.read.snapshot_bytes
        return data


# -- reading the snapshot -------------------------------------------------------------------------


class SnapshotSource:
    """A :data:`~lifeboat.letta.subgraph.RowSource` over one snapshot: reads only the blobs whose
    zone maps may hold the keys (when the stream is keyed by the asked column), counts what it reads
    and never fetches a blob twice."""

    def __init__(self, repo: Repository, snapshot: Snapshot) -> None:
        self.repo = repo
        self.snapshot = snapshot
        self.streams = {table: stream for (_schema, table), stream in table_streams(snapshot).items()}
        self.stats = ReadStats(snapshot_bytes=_distinct_size(snapshot))
        self._blobs: dict[str, bytes] = {}

    def __call__(self, table: str, key: str, keys: set[str] | None) -> TableRows | None:
        stream = self.streams.get(table)
        if stream is None:
            return None
        columns = list(stream.attributes.get("columns") or [])
        if keys is not None and not keys:
            return TableRows(table, columns)
        zoned = keys is not None and stream.attributes.get("key") == key
        refs = stream.blobs_covering(keys if zoned else None)
        lines: list[bytes] = []
        for data in self._read([ref.id for ref in refs], {ref.id: ref for ref in refs}):
            lines.extend(split_records(data))
        rows = TableRows(table, columns, lines)
        return rows if keys is None or key not in columns else rows.where_in(key, keys)

    def _read(self, blob_ids: list[str], refs: dict[str, Any]) -> Iterator[bytes]:
        missing = [blob_id for blob_id in dict.fromkeys(blob_ids) if blob_id not in self._blobs]
        started = time.monotonic()
        for blob_id, data in self.repo.read_blobs(missing):
            self._blobs[blob_id] = data
            self.stats.blobs += 1
            self.stats.bytes += refs[blob_id].size
            self.stats.raw_bytes += len(data)
        self.stats.seconds += time.monotonic() - started
        for blob_id in blob_ids:
            yield self._blobs[blob_id]


def _distinct_size(snapshot: Snapshot) -> int:
    sizes = {blob.id: blob.size for blob in snapshot.iter_blobs()}
    return sum(sizes.values())


def catalog(snapshot: Snapshot) -> list[AgentEntry]:
    """The snapshot's agent catalog (written by the backup)."""
    entries = snapshot.documents.get("letta", {}).get("agents") or []
    return [AgentEntry.model_validate(entry) for entry in entries]


def select_agents(
    entries: list[AgentEntry],
    ids: Iterable[str] = (),
    name: str | None = None,
    tag: str | None = None,
) -> list[AgentEntry]:
    """Agents by id (each must exist), plus those matching the name glob and/or tag; never empty."""
    wanted = list(dict.fromkeys(ids))
    by_id = {entry.id: entry for entry in entries}
    unknown = [agent_id for agent_id in wanted if agent_id not in by_id]
    if unknown:
        raise UsageError(f"agent {unknown[0]} is not in the snapshot ({len(entries)} agents there)")
    chosen = [by_id[agent_id] for agent_id in wanted]
    if name is not None or tag is not None:
        chosen += [entry for entry in filter_agents(entries, name, tag) if entry.id not in wanted]
    if not chosen:
        raise UsageError("no agent in the snapshot matches the selection")
    return chosen


# -- the live database ----------------------------------------------------------------------------


@dataclass
class LiveSchema:
    """What the apply needs to know about the live Letta schema."""

    schema: str
    columns: dict[str, dict[str, bool]]  # table -> column -> NOT NULL
    primary_keys: dict[str, list[str]]
    foreign_keys: tuple[ForeignKey, ...]
    revision: str | None

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def fks_of(self, table: str) -> list[ForeignKey]:
        return [fk for fk in self.foreign_keys if fk.table == table]


_COLUMNS_SQL = """
SELECT c.relname, a.attname, a.attnotnull
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p') AND a.attgenerated = ''
ORDER BY c.relname, a.attnum
"""
_PRIMARY_KEYS_SQL = """
SELECT c.relname, ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
WHERE con.contype = 'p' AND c.relnamespace = %s::regnamespace
"""


def live_schema(conn: psycopg.Connection[Any]) -> LiveSchema:
    database = conn.execute("SELECT current_database()").fetchone()
    schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_catalog.pg_namespace")]
    schema = letta_schema_name(schemas, str(database[0]) if database else "")
    if schema is None:
        raise UnsafeRestore("the target database has no Letta schema; restore the whole snapshot instead")
    columns: dict[str, dict[str, bool]] = {}
    for table, column, not_null in conn.execute(_COLUMNS_SQL, (schema,)):
        columns.setdefault(table, {})[column] = bool(not_null)
    if "agents" not in columns:
        raise UnsafeRestore(f"schema {schema} of the target database has no agents table")
    keys = {table: list(cols) for table, cols in conn.execute(_PRIMARY_KEYS_SQL, (schema,))}
    revision = None
    if "alembic_version" in columns:
        row = conn.execute(
            sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(schema, "alembic_version"))
        ).fetchone()
        revision = row[0] if row else None
    return LiveSchema(schema, columns, keys, capture_foreign_keys(conn, schema), revision)


# -- decisions ------------------------------------------------------------------------------------


@dataclass
class Decisions:
    """Per entity kind: id → decision; plus the id rewrite map and the new agent ids."""

    by_kind: dict[str, dict[str, EntityDecision]] = field(default_factory=dict)
    remap: IdRemap = field(default_factory=IdRemap)
    agent_ids: dict[str, str] = field(default_factory=dict)  # snapshot id -> id written

    def written(self, kind: str) -> set[str]:
        return {i for i, d in self.by_kind.get(kind, {}).items() if d.action in WRITTEN}

    def with_action(self, kind: str, *actions: Action) -> set[str]:
        return {i for i, d in self.by_kind.get(kind, {}).items() if d.action in actions}

    def all(self) -> list[EntityDecision]:
        return [d for kind in self.by_kind.values() for d in kind.values()]


def decide(conn: psycopg.Connection[Any], live: LiveSchema, graph: Subgraph, options: Options) -> Decisions:
    """What happens to every entity of ``graph``, given what the live database holds now."""
    decisions = Decisions()
    agents = sorted(graph.agent_ids)
    for agent_id in agents:
        copy = options.mode is Mode.COPY
        decisions.agent_ids[agent_id] = decisions.remap.renew(agent_id) if copy else agent_id
    for kind, entity in ENTITIES.items():
        ids = sorted(graph.entities[kind])
        rows = graph.rows(entity.table)
        if not ids or rows is None or entity.table not in live.columns:
            continue
        records = {r["id"]: r for r in rows.records() if r["id"] in graph.entities[kind]}
        existing = _live_orgs(conn, live, entity.table, ids)
        users = _outside_users(conn, live, kind, ids, agents)
        decisions.by_kind[kind] = {}
        for entity_id in ids:
            record = records.get(entity_id)
            if record is None:
                continue  # referenced, but not in the snapshot: the reference is dropped on apply
            decision = _decide_one(conn, live, graph, options, kind, record, existing, users)
            decisions.by_kind[kind][entity_id] = decision
            _record_remap(decisions.remap, decision)
    return decisions


def _decide_one(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    graph: Subgraph,
    options: Options,
    kind: str,
    record: dict[str, str | None],
    existing: dict[str, str | None],
    users: dict[str, list[str]],
) -> EntityDecision:
    entity = ENTITIES[kind]
    entity_id = str(record["id"])
    label = record.get(entity.label) or ""
    affects = sorted(set(users.get(entity_id, [])))
    used_by = len(affects)
    target_org = options.org or record.get("organization_id")
    cross_org = target_org != record.get("organization_id")
    in_live = entity_id in existing
    same_org = in_live and existing[entity_id] == target_org

    def made(action: Action, target: str | None = None, shown: list[str] | None = None) -> EntityDecision:
        return EntityDecision(
            kind=kind,
            id=entity_id,
            label=label,
            action=action,
            target_id=target,
            used_by=used_by,
            affects=shown or [],
        )

    if options.mode is Mode.IN_PLACE:
        if not in_live:
            match = _natural_match(conn, live, kind, record, target_org)
            return made(Action.MATCH, match) if match else made(Action.INSERT)
        if not affects and not entity.org_object:
            return made(Action.OVERWRITE)
        if options.shared is SharedPolicy.OVERWRITE:
            return made(Action.OVERWRITE, shown=affects)
        return made(Action.KEEP)
    # copy mode
    if kind == "group" and entity_id not in graph.managed_groups:
        return made(Action.SKIP)
    if not entity.org_object:
        shared_live = in_live and same_org and bool(affects)
        if shared_live and options.shared is SharedPolicy.MISSING:
            return made(Action.REUSE)
        if shared_live and options.shared is SharedPolicy.OVERWRITE:
            return made(Action.OVERWRITE, shown=affects)
        return made(Action.COPY)
    if same_org:
        if options.shared is SharedPolicy.OVERWRITE:
            return made(Action.OVERWRITE, shown=affects)
        return made(Action.REUSE)
    match = _natural_match(conn, live, kind, record, target_org)
    if match:
        return made(Action.MATCH, match)
    return made(Action.COPY if in_live or cross_org else Action.INSERT)


def _record_remap(remap: IdRemap, decision: EntityDecision) -> None:
    if decision.action is Action.COPY:
        decision.target_id = remap.renew(decision.id)
    elif decision.action is Action.MATCH and decision.target_id:
        remap.point(decision.id, decision.target_id)


def _live_orgs(
    conn: psycopg.Connection[Any], live: LiveSchema, table: str, ids: list[str]
) -> dict[str, str | None]:
    org = sql.SQL("organization_id") if "organization_id" in live.columns[table] else sql.SQL("NULL")
    query = sql.SQL("SELECT id, {}::text FROM {} WHERE id = ANY(%s)").format(org, live.table(table))
    return {row[0]: row[1] for row in conn.execute(query, (ids,))}


def _outside_users(
    conn: psycopg.Connection[Any], live: LiveSchema, kind: str, ids: list[str], agents: list[str]
) -> dict[str, list[str]]:
    """Entity id → live agents outside the restored set that use it now."""
    users: dict[str, list[str]] = {}
    links = list(USERS[kind])
    for table, column, agent_column in links:
        if table not in live.columns:
            continue
        query = sql.SQL(
            "SELECT {col}, {agent} FROM {table} WHERE {col} = ANY(%s) AND {agent} IS NOT NULL "
            "AND NOT ({agent} = ANY(%s))"
        ).format(col=sql.Identifier(column), agent=sql.Identifier(agent_column), table=live.table(table))
        for entity_id, agent_id in conn.execute(query, (ids, agents)):
            users.setdefault(entity_id, []).append(agent_id)
    if kind == "block" and "blocks_conversations" in live.columns:
        query = sql.SQL(
            "SELECT bc.block_id, c.agent_id FROM {bc} bc JOIN {conv} c ON c.id = bc.conversation_id "
            "WHERE bc.block_id = ANY(%s) AND NOT (c.agent_id = ANY(%s))"
        ).format(bc=live.table("blocks_conversations"), conv=live.table("conversations"))
        for entity_id, agent_id in conn.execute(query, (ids, agents)):
            users.setdefault(entity_id, []).append(agent_id)
    return users


def _natural_match(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    kind: str,
    record: dict[str, str | None],
    org: str | None,
) -> str | None:
    """The live row of an organization object with the same natural key (tools and folders by
    name, identities by identifier key), when the snapshot's id is gone or belongs elsewhere."""
    entity = ENTITIES[kind]
    if not entity.named or any(column not in live.columns[entity.table] for column in entity.named):
        return None
    values = [org if column == "organization_id" else record.get(column) for column in entity.named]
    where = sql.SQL(" AND ").join(
        sql.SQL("{} IS NOT DISTINCT FROM %s").format(sql.Identifier(column)) for column in entity.named
    )
    query = sql.SQL("SELECT id FROM {} WHERE {} LIMIT 1").format(live.table(entity.table), where)
    row = conn.execute(query, values).fetchone()
    return str(row[0]) if row and row[0] != record["id"] else None


# -- staging --------------------------------------------------------------------------------------


@dataclass
class Scope:
    """Which live rows of a table the restore replaces: ``key`` in ``ids`` (through ``via``)."""

    key: str
    ids: list[str]
    via: tuple[str, str] | None = None


@dataclass
class Staged:
    spec: TableSpec
    rows: TableRows
    scope: Scope | None
    stage: str  # temp table name


def rows_to_write(graph: Subgraph, decisions: Decisions, options: Options) -> dict[str, TableRows]:
    """The snapshot rows each table gets, after decisions, with ids rewritten for copies."""
    out: dict[str, TableRows] = {}
    copy = options.mode is Mode.COPY
    skipped_groups = decisions.with_action("group", Action.SKIP)
    for spec in all_specs():
        rows = graph.rows(spec.table)
        if rows is None:
            continue
        rows = _filter_for(spec, rows, graph, decisions, skipped_groups)
        if copy and spec.owner == AGENT and rows.has("id"):
            for value in rows.values("id"):
                if value:
                    decisions.remap.renew(value)
        elif spec.owner != AGENT and rows.has("id") and decisions.with_action(spec.owner, Action.COPY):
            copied = _copied_parents(spec, decisions, graph)
            for value, parent in zip(rows.values("id"), rows.values(spec.key), strict=True):
                if value and parent in copied:
                    decisions.remap.renew(value)
        out[spec.table] = rows
    return {table: _rewrite(rows, decisions, options) for table, rows in out.items()}


def _filter_for(
    spec: TableSpec, rows: TableRows, graph: Subgraph, decisions: Decisions, skipped_groups: set[str]
) -> TableRows:
    if spec.owner == AGENT:
        return (
            rows.where("group_id", lambda g: g not in skipped_groups)
            if spec.table == "groups_agents"
            else rows
        )
    written = decisions.written(spec.owner)
    entity = ENTITIES[spec.owner]
    if spec.table == entity.table:
        return rows.where_in("id", written)
    if spec.via is not None:
        parents = graph.rows(spec.via[0])
        keys = (
            set()
            if parents is None
            else {r["id"] for r in parents.records() if r.get(spec.via[1]) in written and r["id"]}
        )
        return rows.where_in(spec.key, keys)
    return rows.where_in(spec.key, written)


def _copied_parents(spec: TableSpec, decisions: Decisions, graph: Subgraph) -> set[str]:
    copied = decisions.with_action(spec.owner, Action.COPY)
    if spec.table == ENTITIES[spec.owner].table:
        return {value for value in graph.ids(spec.table) if value in copied}
    if spec.via is not None:
        parents = graph.rows(spec.via[0])
        if parents is None:
            return set()
        return {r["id"] for r in parents.records() if r.get(spec.via[1]) in copied and r["id"]}
    return copied


def _rewrite(rows: TableRows, decisions: Decisions, options: Options) -> TableRows:
    """Ids through the remap; for copies also the organization and the agents' name suffix."""
    org = options.org.encode() if options.org and options.mode is Mode.COPY else None
    org_at = rows.index("organization_id") if org and rows.has("organization_id") else None
    name_at = rows.index("name") if options.mode is Mode.COPY and rows.table == "agents" else None
    if not len(decisions.remap) and org_at is None and name_at is None:
        return rows
    lines = []
    for line in rows.lines:
        line = decisions.remap.line(line)
        if org_at is not None or name_at is not None:
            fields = rows.fields(line)
            if org_at is not None and fields[org_at] != b"\\N":
                fields[org_at] = org or fields[org_at]
            if name_at is not None:
                fields[name_at] = fields[name_at] + copy_escape(options.suffix)
            line = b"\t".join(fields) + b"\n"
        lines.append(line)
    return TableRows(rows.table, rows.columns, lines)


def scope_for(spec: TableSpec, graph: Subgraph, decisions: Decisions, options: Options) -> Scope | None:
    """The live rows the table's staged rows replace (in place only; a copy replaces nothing)."""
    if options.mode is Mode.COPY:
        if spec.owner == AGENT:
            return None
        overwritten = decisions.with_action(spec.owner, Action.OVERWRITE)
        if spec.table == ENTITIES[spec.owner].table or not overwritten:
            return None
        return Scope(spec.key, sorted(overwritten), spec.via)
    if spec.owner == AGENT:
        return Scope(spec.key, sorted(graph.agent_ids), spec.via)
    if spec.table == ENTITIES[spec.owner].table:
        return None  # entity rows are upserted, never deleted
    return Scope(spec.key, sorted(decisions.written(spec.owner)), spec.via)


# -- apply ----------------------------------------------------------------------------------------


class Applier:
    """Everything that happens inside the one transaction."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        live: LiveSchema,
        graph: Subgraph,
        decisions: Decisions,
        options: Options,
    ) -> None:
        self.conn = conn
        self.live = live
        self.graph = graph
        self.decisions = decisions
        self.options = options
        self.tables: dict[str, TablePlan] = {}
        self.staged: dict[str, Staged] = {}
        self.warnings: list[str] = []

    # staging
    def stage(self, rows: dict[str, TableRows]) -> None:
        for spec in all_specs():
            snapshot_rows = self.graph.rows(spec.table)
            if snapshot_rows is None or spec.table not in self.live.columns:
                if snapshot_rows is not None and len(snapshot_rows):
                    raise UnsafeRestore(f"the live database has no table {spec.table}: cannot restore it")
                continue
            table_rows = rows[spec.table]
            missing = [c for c in table_rows.columns if c not in self.live.columns[spec.table]]
            if missing and len(table_rows):
                raise UnsafeRestore(
                    f"live table {spec.table} lacks column(s) {', '.join(missing)} the snapshot has; "
                    "restoring would lose data (upgrade or downgrade Letta to the snapshot's revision)"
                )
            name = f"lb_stage_{spec.table}"
            self.conn.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
                    sql.Identifier(name), self.live.table(spec.table)
                )
            )
            if len(table_rows):
                _copy_lines(self.conn, name, table_rows)
            scope = scope_for(spec, self.graph, self.decisions, self.options)
            self.staged[spec.table] = Staged(spec, table_rows, scope, name)
            self.tables[spec.table] = TablePlan(
                table=spec.table, snapshot_rows=len(snapshot_rows), write=len(table_rows)
            )

    def order(self) -> list[str]:
        """Staged tables, parents before children (foreign keys of the live schema)."""
        return topological(list(self.staged), self.live.foreign_keys)

    # deleting
    def count_removals(self) -> None:
        for table, staged in self.staged.items():
            if staged.scope is not None:
                query = sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(
                    self.live.table(table), self._removal_where(table, staged)
                )
                row = self.conn.execute(query, self._scope_params(staged)).fetchone()
                self.tables[table].remove = int(row[0]) if row else 0

    def delete(self, order: list[str]) -> None:
        self._detach_deferred()
        for table in reversed(order):
            staged = self.staged[table]
            if staged.scope is None:
                continue
            query = sql.SQL("DELETE FROM {} t WHERE {}").format(
                self.live.table(table), self._removal_where(table, staged)
            )
            self.tables[table].remove = self.conn.execute(query, self._scope_params(staged)).rowcount

    def _removal_where(self, table: str, staged: Staged) -> sql.Composable:
        assert staged.scope is not None
        scope = staged.scope
        if scope.via is None:
            in_scope = sql.SQL("t.{} = ANY(%s)").format(sql.Identifier(scope.key))
        else:
            in_scope = sql.SQL("t.{} IN (SELECT id FROM {} WHERE {} = ANY(%s))").format(
                sql.Identifier(scope.key), self.live.table(scope.via[0]), sql.Identifier(scope.via[1])
            )
        key = self.live.primary_keys.get(table)
        if not key:
            return in_scope
        same = sql.SQL(" AND ").join(sql.SQL("s.{0} = t.{0}").format(sql.Identifier(c)) for c in key)
        return sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
            in_scope, sql.Identifier(staged.stage), same
        )

    def _scope_params(self, staged: Staged) -> tuple[list[str]]:
        assert staged.scope is not None
        return (staged.scope.ids,)

    def _detach_deferred(self) -> None:
        """Null the cycle-closing columns of rows about to be rewritten (block → block_history)."""
        for table, columns in DEFERRED_COLUMNS.items():
            staged = self.staged.get(table)
            if staged is None or not len(staged.rows):
                continue
            for column in columns:
                self.conn.execute(
                    sql.SQL(
                        "UPDATE {t} SET {c} = NULL WHERE {c} IS NOT NULL AND id IN (SELECT id FROM {s})"
                    ).format(
                        t=self.live.table(table), c=sql.Identifier(column), s=sql.Identifier(staged.stage)
                    )
                )

    # inserting
    def insert(self, order: list[str], after_table: Any = None) -> None:
        for table in order:
            staged = self.staged[table]
            if not len(staged.rows):
                self.tables[table].written = 0
                continue
            if table == "messages":
                self._sequence_ids(staged)
            self._drop_dangling(table, staged)
            self.tables[table].written = self._upsert(table, staged)
            if after_table is not None:
                after_table(table)
        self._attach_deferred()
        self._advance_sequence()

    def _drop_dangling(self, table: str, staged: Staged) -> None:
        """Rows referencing a row that does not exist (now that parents are in): the reference is
        cleared when it may be NULL, else the row is not restored. Reported either way."""
        deferred = DEFERRED_COLUMNS.get(table, ())
        stage = sql.Identifier(staged.stage)
        for fk in self.live.fks_of(table):
            if any(column in deferred for column in fk.columns):
                continue
            present = sql.SQL(" AND ").join(
                sql.SQL("s.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns
            )
            match = sql.SQL(" AND ").join(
                sql.SQL("p.{} = s.{}").format(sql.Identifier(r), sql.Identifier(c))
                for c, r in zip(fk.columns, fk.ref_columns, strict=True)
            )
            dangling = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
                present, self.live.table(fk.ref_table), match
            )
            nullable = all(not self.live.columns[table].get(c, True) for c in fk.columns)
            if nullable:
                sets = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in fk.columns)
                query = sql.SQL("UPDATE {} s SET {} WHERE {}").format(stage, sets, dangling)
                verb = f"cleared {', '.join(fk.columns)} of"
            else:
                query = sql.SQL("DELETE FROM {} s WHERE {}").format(stage, dangling)
                verb = "did not restore"
            count = self.conn.execute(query).rowcount
            if count:
                self.warnings.append(
                    f"{table}: {verb} {count} row(s) whose {fk.ref_table} row does not exist in the live database"
                )

    def _upsert(self, table: str, staged: Staged) -> int:
        columns = [c for c in staged.rows.columns if c in self.live.columns[table]] or list(
            self.live.columns[table]
        )
        deferred = DEFERRED_COLUMNS.get(table, ())
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        values = sql.SQL(", ").join(
            sql.SQL("NULL") if c in deferred else sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns
        )
        insert = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} s").format(
            self.live.table(table), names, values, sql.Identifier(staged.stage)
        )
        key = self.live.primary_keys.get(table)
        if key:
            others = [c for c in columns if c not in key]
            target = sql.SQL(", ").join(sql.Identifier(c) for c in key)
            if others:
                sets = sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others
                )
                insert += sql.SQL(
                    " ON CONFLICT ({}) DO UPDATE SET {} WHERE ROW(t.*)::text IS DISTINCT FROM ROW(EXCLUDED.*)::text"
                ).format(target, sets)
            else:
                insert += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(target)
        return self.conn.execute(insert).rowcount

    def _attach_deferred(self) -> None:
        for table, columns in DEFERRED_COLUMNS.items():
            staged = self.staged.get(table)
            if staged is None or not len(staged.rows):
                continue
            for column in columns:
                fk = next((f for f in self.live.fks_of(table) if f.columns == (column,)), None)
                exists: sql.Composable = sql.SQL("")
                if fk is not None:
                    exists = sql.SQL(" AND EXISTS (SELECT 1 FROM {} p WHERE p.{} = s.{})").format(
                        self.live.table(fk.ref_table),
                        sql.Identifier(fk.ref_columns[0]),
                        sql.Identifier(column),
                    )
                self.conn.execute(
                    sql.SQL(
                        "UPDATE {t} t SET {c} = s.{c} FROM {s} s WHERE t.id = s.id AND s.{c} IS NOT NULL{e}"
                    ).format(
                        t=self.live.table(table),
                        c=sql.Identifier(column),
                        s=sql.Identifier(staged.stage),
                        e=exists,
                    )
                )

    # messages.sequence_id
    def _sequence_ids(self, staged: Staged) -> None:
        """Keep the snapshot's sequence ids where free; else take new ones from message_seq_id, in
        the snapshot's order (the API lists messages by sequence id)."""
        if "sequence_id" not in staged.rows.columns or not len(staged.rows):
            return
        stage = sql.Identifier(staged.stage)
        if self.options.mode is Mode.IN_PLACE:
            clash = self.conn.execute(
                sql.SQL(
                    "SELECT EXISTS (SELECT 1 FROM {} m JOIN {} s ON s.sequence_id = m.sequence_id AND s.id <> m.id)"
                ).format(self.live.table("messages"), stage)
            ).fetchone()
            if not (clash and clash[0]):
                return
            self.warnings.append("messages: sequence ids were taken by other messages; renumbered in order")
        old = [
            r[0] for r in self.conn.execute(sql.SQL("SELECT sequence_id FROM {} ORDER BY 1").format(stage))
        ]
        new = sorted(
            r[0]
            for r in self.conn.execute(
                sql.SQL("SELECT nextval({}) FROM generate_series(1, %s)").format(
                    sql.Literal(f"{self.live.schema}.{MESSAGE_SEQUENCE}")
                ),
                (len(old),),
            )
        )
        self.conn.execute(
            sql.SQL(
                "UPDATE {} s SET sequence_id = m.new FROM unnest(%s::bigint[], %s::bigint[]) AS m(old, new) "
                "WHERE s.sequence_id = m.old"
            ).format(stage),
            (old, new),
        )

    def _advance_sequence(self) -> None:
        """``message_seq_id`` must stay ahead of every sequence id (Letta inserts with nextval)."""
        if "messages" not in self.staged:
            return
        sequence = sql.Identifier(self.live.schema, MESSAGE_SEQUENCE)
        self.conn.execute(
            sql.SQL(
                "SELECT setval({name}, m.high) FROM (SELECT max(sequence_id) AS high FROM {messages}) m, {seq} q "
                "WHERE m.high > q.last_value"
            ).format(
                name=sql.Literal(f"{self.live.schema}.{MESSAGE_SEQUENCE}"),
                messages=self.live.table("messages"),
                seq=sequence,
            )
        )


def topological(tables: list[str], foreign_keys: Iterable[ForeignKey]) -> list[str]:
    """``tables`` ordered parents first; edges through deferred (cycle-closing) columns ignored."""
    present = set(tables)
    parents: dict[str, set[str]] = {table: set() for table in tables}
    for fk in foreign_keys:
        if fk.table in present and fk.ref_table in present and fk.table != fk.ref_table:
            if any(c in DEFERRED_COLUMNS.get(fk.table, ()) for c in fk.columns):
                continue
            parents[fk.table].add(fk.ref_table)
    ordered: list[str] = []
    remaining = sorted(tables)
    while remaining:
        ready = [t for t in remaining if parents[t] <= set(ordered)]
        if not ready:
            raise LifeboatError(f"foreign-key cycle among {', '.join(remaining)}")
        ordered.extend(ready)
        remaining = [t for t in remaining if t not in ready]
    return ordered


def _copy_lines(conn: psycopg.Connection[Any], table: str, rows: TableRows) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in rows.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        batch: list[bytes] = []
        size = 0
        for line in rows.lines:
            batch.append(line)
            size += len(line)
            if size >= 1 << 20:
                copy.write(b"".join(batch))
                batch, size = [], 0
        if batch:
            copy.write(b"".join(batch))


# -- Letta's lock ---------------------------------------------------------------------------------


class AgentLocks:
    """Letta's own per-conversation locks (``conversation:lock:<agent or conversation id>``), taken
    the way Letta takes them (redis-py ``Lock``: SET NX PX with a random token), so a request for
    the agent gets Letta's usual 409 "busy" while the restore applies."""

    def __init__(self, target: RedisTarget | None, keys: list[str], force: bool) -> None:
        self.target = target
        self.keys = keys
        self.force = force
        self.client: Any = None
        self.locks: list[Any] = []
        self.note: str | None = None

    def __enter__(self) -> AgentLocks:
        if self.target is None:
            self.note = "no Redis configured (LETTA_REDIS_HOST): Letta runs without locks, none taken"
            return self
        import redis

        from lifeboat.ops.redis import client

        self.client = client(self.target)
        try:
            for key in self.keys:
                lock = self.client.lock(key, timeout=LOCK_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS)
                if lock.acquire(blocking=True):
                    self.locks.append(lock)
                elif self.force:
                    self.note = f"{key} is held by Letta; went ahead without it (--force)"
                else:
                    raise UnsafeRestore(
                        f"Letta holds {key} (a request is running); retry later, or pass --force"
                    )
        except redis.RedisError as exc:
            self._release()
            raise DatabaseError(
                f"cannot reach Letta's Redis at {self.target.host}:{self.target.port}: {exc}"
            ) from exc
        except BaseException:
            self._release()
            raise
        self.note = f"held {len(self.locks)} Letta lock(s) while applying"
        return self

    def extend(self) -> None:
        for lock in self.locks:
            try:
                lock.reacquire()
            except Exception:  # a lost lock only weakens the guarantee; the transaction is intact
                self.note = "a Letta lock expired while applying"

    def invalidate(self, agent_ids: Iterable[str], run_ids: Iterable[str]) -> int:
        """Drop the restored agents' keys (latest run pointer, memory-repo lock, run streams)."""
        if self.client is None:
            return 0
        keys = [k for a in agent_ids for k in redis_keys.agent_keys(a)]
        keys += [k for r in run_ids for k in redis_keys.run_keys(r)]
        return int(self.client.delete(*keys)) if keys else 0

    def _release(self) -> None:
        for lock in self.locks:
            with contextlib.suppress(Exception):  # expired: nothing to release
                lock.release()
        self.locks = []

    def __exit__(self, *exc: object) -> None:
        self._release()


# -- the operation --------------------------------------------------------------------------------


def run_agent_restore(
    repo: Repository,
    dsn: str,
    *,
    snapshot_ref: str = "latest",
    agent_ids: Iterable[str] = (),
    name: str | None = None,
    tag: str | None = None,
    options: Options | None = None,
    redis: RedisTarget | None = None,
) -> AgentRestoreReport:
    """Restore the selected agents from ``snapshot_ref`` into the live database at ``dsn``."""
    options = options or Options()
    _check_options(options)
    started = time.monotonic()
    timings: dict[str, float] = {}
    with repo.lock():
        snapshot = repo.load_snapshot(snapshot_ref)
        chosen = select_agents(catalog(snapshot), agent_ids, name, tag)
        source = SnapshotSource(repo, snapshot)
        graph = collect(source, [entry.id for entry in chosen])
    timings["read"] = time.monotonic() - started
    with pg.connection(dsn, autocommit=True) as conn:
        report = _apply(conn, graph, snapshot, options, redis, timings)
    report.read = source.stats
    report.database = pg.describe_target(dsn)
    report.seconds = time.monotonic() - started
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    return report


def _check_options(options: Options) -> None:
    if options.mode is Mode.IN_PLACE and options.shared is SharedPolicy.COPY:
        raise UsageError("--shared=copy only applies to --mode copy")
    if options.mode is Mode.IN_PLACE and options.org:
        raise UsageError("--org only applies to --mode copy (in place keeps each agent's organization)")


def _apply(
    conn: psycopg.Connection[Any],
    graph: Subgraph,
    snapshot: Snapshot,
    options: Options,
    redis: RedisTarget | None,
    timings: dict[str, float],
) -> AgentRestoreReport:
    live = live_schema(conn)
    revision = snapshot.documents.get("source", {}).get("letta_revision")
    warnings = []
    if revision and live.revision and revision != live.revision:
        warnings.append(
            f"snapshot is Letta revision {revision}, the live database {live.revision}: columns restored by name"
        )
    conversations = sorted(graph.ids("conversations"))
    lock_keys = [redis_keys.agent_lock_key(a) for a in sorted(graph.agent_ids)]
    lock_keys += [redis_keys.agent_lock_key(c) for c in conversations]
    take_locks = options.mode is Mode.IN_PLACE and not options.dry_run
    with AgentLocks(redis if take_locks else None, lock_keys, options.force) as locks:
        phase = time.monotonic()
        with conn.transaction() as transaction:
            report = _in_transaction(conn, live, graph, snapshot, options, locks)
            report.warnings[:0] = warnings
            if options.dry_run:
                raise psycopg.Rollback(transaction)
        timings["apply"] = time.monotonic() - phase
        if not options.dry_run and options.mode is Mode.IN_PLACE:
            removed = locks.invalidate(graph.agent_ids, graph.ids("runs"))
            report.redis = f"{locks.note}; {removed} stale key(s) removed" if locks.client else locks.note
        else:
            report.redis = locks.note or "no Redis changes"
    return report


def _in_transaction(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    graph: Subgraph,
    snapshot: Snapshot,
    options: Options,
    locks: AgentLocks,
) -> AgentRestoreReport:
    agents = sorted(graph.agent_ids)
    present = _lock_agent_rows(conn, live, agents, lock=not options.dry_run and options.mode is Mode.IN_PLACE)
    refused = _active_runs(conn, live, agents) if options.mode is Mode.IN_PLACE else None
    if refused and not options.force and not options.dry_run:
        raise UnsafeRestore(refused + "; wait for it, cancel it, or pass --force")
    decisions = decide(conn, live, graph, options)
    applier = Applier(conn, live, graph, decisions, options)
    applier.stage(rows_to_write(graph, decisions, options))
    order = applier.order()
    if options.dry_run:
        applier.count_removals()
    else:
        fault = _fault()
        applied = [0]

        def after_table(table: str) -> None:
            applied[0] += 1
            locks.extend()
            if fault is not None and applied[0] >= fault[0]:
                _inject(fault[1], table)

        applier.delete(order)
        applier.insert(order, after_table)
    names = graph.agent_names()
    return AgentRestoreReport(
        snapshot=snapshot.id,
        mode=options.mode,
        shared_policy=options.shared,
        dry_run=options.dry_run,
        database="",
        agents=[
            AgentPlanEntry(
                id=a,
                name=names.get(a, ""),
                new_id=decisions.agent_ids.get(a) if options.mode is Mode.COPY else None,
                live=a in present,
                requested=a in graph.requested,
            )
            for a in agents
        ],
        tables=[applier.tables[t] for t in order],
        entities=sorted(decisions.all(), key=lambda d: (d.kind, d.label, d.id)),
        read=ReadStats(),
        warnings=_run_warnings(snapshot, graph) + applier.warnings,
        refused=refused if options.dry_run else None,
    )


def _lock_agent_rows(
    conn: psycopg.Connection[Any], live: LiveSchema, agents: list[str], *, lock: bool
) -> set[str]:
    """The agents that exist live; with ``lock``, their rows are locked until commit (Letta's own
    writes to them, such as ``message_ids`` updates, wait)."""
    query = sql.SQL("SELECT id FROM {} WHERE id = ANY(%s){}").format(
        live.table("agents"), sql.SQL(" FOR UPDATE") if lock else sql.SQL("")
    )
    return {row[0] for row in conn.execute(query, (agents,))}


def _active_runs(conn: psycopg.Connection[Any], live: LiveSchema, agents: list[str]) -> str | None:
    query = sql.SQL(
        "SELECT agent_id, id, status FROM {} WHERE agent_id = ANY(%s) AND status = ANY(%s) ORDER BY created_at"
    ).format(live.table("runs"))
    rows = conn.execute(query, (agents, list(ACTIVE_RUN_STATUSES))).fetchall()
    if not rows:
        return None
    agent_id, run_id, status = rows[0]
    return f"agent {agent_id} has {len(rows)} active run(s) (run {run_id} is {status})"


def _run_warnings(snapshot: Snapshot, graph: Subgraph) -> list[str]:
    in_flight = snapshot.documents.get("letta", {}).get("runs_in_flight") or []
    mine = [r for r in in_flight if r.get("agent_id") in graph.agent_ids]
    if not mine:
        return []
    return [
        f"{len(mine)} run(s) were in flight at the snapshot instant and are restored as they were "
        f"(e.g. {mine[0]['run_id']} {mine[0]['status']}); 'lifeboat reconcile' closes them"
    ]


def _fault() -> tuple[int, str] | None:
    """Test hook (``LIFEBOAT_AGENT_RESTORE_FAULT=N`` or ``N:kill``): fail after N tables applied."""
    value = os.environ.get(FAULT_ENV)
    if not value:
        return None
    count, _, how = value.partition(":")
    return int(count), how or "error"


def _inject(how: str, table: str) -> None:
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise LifeboatError(f"injected fault after applying {table} ({FAULT_ENV})")
