"""The pure part of an agent restore: what happens to every entity (:func:`decide`), which snapshot
rows each table gets (:func:`rows_to_write`), which live rows they replace (:func:`scope_for`) and
in what order tables are written (:func:`apply_order`). Nothing here touches a database; the live
side comes in as :class:`~lifeboat.ops.agent_restore.facts.LiveFacts`.

The decision table, per entity the agents point to (``shared``: live agents outside the restored
set use it now; org objects are tools, folders and identities, never exclusive to one agent):

==========  ==========================================  =====================================
mode        row                                         action
==========  ==========================================  =====================================
in place    missing live, a live row has its name       MATCH (references point to that row)
in place    missing live                                INSERT
in place    live, not shared, not an org object         OVERWRITE
in place    live, shared or org object                  OVERWRITE with ``--shared overwrite``,
                                                        else KEEP
copy        a group the agents do not manage            SKIP
copy        block/archive live in the target org and    REUSE (``missing``), OVERWRITE
            shared                                      (``overwrite``), COPY (``copy``)
copy        block/archive otherwise                     COPY
copy        org object live in the target org           OVERWRITE with ``--shared overwrite``,
                                                        else REUSE
copy        org object: a live row in the target org    MATCH
            has its name
copy        org object otherwise                        COPY if its id is taken or the target
                                                        org differs, else INSERT
==========  ==========================================  =====================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lifeboat.letta.schema_shape import ForeignKey
from lifeboat.letta.subgraph import (
    AGENT,
    DEFERRED_COLUMNS,
    ENTITIES,
    IdRemap,
    Subgraph,
    TableRows,
    TableSpec,
    all_specs,
)
from lifeboat.ops.agent_restore.facts import LiveFacts
from lifeboat.ops.agent_restore.report import WRITTEN, Action, EntityDecision, Mode, Options, SharedPolicy
from lifeboat.pg.rows import topological

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


def decide(graph: Subgraph, facts: LiveFacts, options: Options) -> Decisions:
    """What happens to every entity of ``graph``, given what the live database holds now."""
    decisions = Decisions()
    copy = options.mode is Mode.COPY
    for agent_id in sorted(graph.agent_ids):
        decisions.agent_ids[agent_id] = decisions.remap.renew(agent_id) if copy else agent_id
    for kind, entity in ENTITIES.items():
        ids = sorted(graph.entities[kind])
        rows = graph.rows(entity.table)
        if not ids or rows is None or entity.table not in facts.tables:
            continue
        records = {r["id"]: r for r in rows.records() if r["id"] in graph.entities[kind]}
        decisions.by_kind[kind] = {}
        for entity_id in ids:
            record = records.get(entity_id)
            if record is None:
                continue  # referenced, but not in the snapshot: the reference is dropped on apply
            decision = decide_one(graph, facts, options, kind, record)
            decisions.by_kind[kind][entity_id] = decision
            _record_remap(decisions.remap, decision)
    return decisions


def decide_one(
    graph: Subgraph, facts: LiveFacts, options: Options, kind: str, record: dict[str, str | None]
) -> EntityDecision:
    """The decision for one entity row of the snapshot (see the table in the module docstring)."""
    entity = ENTITIES[kind]
    entity_id = str(record["id"])
    existing = facts.orgs.get(kind, {})
    used_by = facts.used_by.get(kind, {}).get(entity_id, 0)
    affects = sorted(set(facts.users.get(kind, {}).get(entity_id, [])))  # listed for --shared overwrite
    match = facts.matches.get(kind, {}).get(entity_id)
    target_org = options.org or record.get("organization_id")
    in_live = entity_id in existing
    same_org = in_live and existing[entity_id] == target_org

    def made(action: Action, target: str | None = None, shown: list[str] | None = None) -> EntityDecision:
        label = record.get(entity.label) or ""
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
            return made(Action.MATCH, match) if match else made(Action.INSERT)
        if not used_by and not entity.org_object:
            return made(Action.OVERWRITE)
        if options.shared is SharedPolicy.OVERWRITE:
            return made(Action.OVERWRITE, shown=affects)
        return made(Action.KEEP)
    # copy mode
    if kind == "group" and entity_id not in graph.managed_groups:
        return made(Action.SKIP)
    if not entity.org_object:
        shared_live = in_live and same_org and bool(used_by)
        if shared_live and options.shared is SharedPolicy.MISSING:
            return made(Action.REUSE)
        if shared_live and options.shared is SharedPolicy.OVERWRITE:
            return made(Action.OVERWRITE, shown=affects)
        return made(Action.COPY)
    if same_org:
        if options.shared is SharedPolicy.OVERWRITE:
            return made(Action.OVERWRITE, shown=affects)
        return made(Action.REUSE)
    if match:
        return made(Action.MATCH, match)
    cross_org = target_org != record.get("organization_id")
    return made(Action.COPY if in_live or cross_org else Action.INSERT)


def _record_remap(remap: IdRemap, decision: EntityDecision) -> None:
    if decision.action is Action.COPY:
        decision.target_id = remap.renew(decision.id)
    elif decision.action is Action.MATCH and decision.target_id:
        remap.point(decision.id, decision.target_id)


# -- rows -----------------------------------------------------------------------------------------


@dataclass
class Scope:
    """Which live rows of a table the restore replaces: ``key`` in ``ids`` (through ``via``)."""

    key: str
    ids: list[str]
    via: tuple[str, str] | None = None


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
        return rows.where_in(spec.key, _via_ids(graph, spec.via, written))
    return rows.where_in(spec.key, written)


def _via_ids(graph: Subgraph, via: tuple[str, str], owners: set[str]) -> set[str]:
    """Ids of the ``via`` table's snapshot rows that belong to ``owners``."""
    parents = graph.rows(via[0])
    if parents is None:
        return set()
    return {r["id"] for r in parents.records() if r.get(via[1]) in owners and r["id"]}


def _copied_parents(spec: TableSpec, decisions: Decisions, graph: Subgraph) -> set[str]:
    copied = decisions.with_action(spec.owner, Action.COPY)
    if spec.table == ENTITIES[spec.owner].table:
        return {value for value in graph.ids(spec.table) if value in copied}
    if spec.via is not None:
        return _via_ids(graph, spec.via, copied)
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
        line = decisions.remap.line(line)  # uuids keep their length: binary rows stay well-formed
        if org_at is not None or name_at is not None:
            fields = rows.raw_fields(line)
            if org_at is not None and fields[org_at] is not None:
                fields[org_at] = org or fields[org_at]
            if name_at is not None:
                fields[name_at] = (fields[name_at] or b"") + rows.stored_text(options.suffix)
            line = rows.join(fields)
        lines.append(line)
    return rows.with_lines(lines)


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


def apply_order(tables: Iterable[str], foreign_keys: Iterable[ForeignKey]) -> list[str]:
    """``tables`` ordered parents first; edges through deferred (cycle-closing) columns ignored."""
    edges = [
        (fk.table, fk.ref_table)
        for fk in foreign_keys
        if not any(c in DEFERRED_COLUMNS.get(fk.table, ()) for c in fk.columns)
    ]
    return topological(tables, edges)
