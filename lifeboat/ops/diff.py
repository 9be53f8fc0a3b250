"""``diff SNAP_A SNAP_B``: what changed for agents between two snapshots.

The manifests' agent catalogs say which agents appeared, disappeared or changed (their digest
covers memory, in-context messages and config); only for changed agents (or the one asked for)
are the subgraphs read, through zone maps, from both snapshots. Per agent: block values as
unified diffs, blocks attached/detached, messages added/removed, tools and folders
attached/detached, archival passages added/removed, and which agent fields changed.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel, Field

from lifeboat.errors import UsageError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.letta.subgraph import Subgraph, collect
from lifeboat.ops.agent_restore.source import SnapshotSource, catalog
from lifeboat.repo.repository import Repository

EXCERPT = 120
IGNORED_FIELDS = {"updated_at", "message_ids", "_last_updated_by_id"}


class Item(BaseModel):
    """One attached/detached/added/removed thing."""

    id: str
    name: str = ""


class BlockChange(BaseModel):
    id: str
    label: str
    diff: str  # unified diff of the value


class AgentDiff(BaseModel):
    id: str
    name: str
    status: str  # "changed", "added", "removed", "unchanged"
    fields: list[str] = Field(default_factory=list)  # agent columns whose value changed
    blocks_changed: list[BlockChange] = Field(default_factory=list)
    blocks_attached: list[Item] = Field(default_factory=list)
    blocks_detached: list[Item] = Field(default_factory=list)
    messages_added: list[Item] = Field(default_factory=list)
    messages_removed: list[Item] = Field(default_factory=list)
    tools_attached: list[Item] = Field(default_factory=list)
    tools_detached: list[Item] = Field(default_factory=list)
    folders_attached: list[Item] = Field(default_factory=list)
    folders_detached: list[Item] = Field(default_factory=list)
    passages_added: list[Item] = Field(default_factory=list)
    passages_removed: list[Item] = Field(default_factory=list)


class DiffReport(BaseModel):
    snapshot_a: str
    snapshot_b: str
    agents: list[AgentDiff]
    unchanged: int = 0
    bytes_read: int = 0


def run_diff(repo: Repository, ref_a: str, ref_b: str, *, agent_id: str | None = None) -> DiffReport:
    with repo.lock():
        a, b = repo.load_snapshot(ref_a), repo.load_snapshot(ref_b)
        before = {entry.id: entry for entry in catalog(a)}
        after = {entry.id: entry for entry in catalog(b)}
        if agent_id is not None and agent_id not in before and agent_id not in after:
            raise UsageError(f"agent {agent_id} is in neither snapshot")
        ids = [agent_id] if agent_id else sorted(before.keys() | after.keys())
        changed = [
            i for i in ids if i in before and i in after and (agent_id or _changed(before[i], after[i]))
        ]
        source_a, source_b = SnapshotSource(repo, a), SnapshotSource(repo, b)
        graph_a = collect(source_a, changed) if changed else None
        graph_b = collect(source_b, changed) if changed else None
    diffs = []
    for i in ids:
        if i not in before:
            diffs.append(AgentDiff(id=i, name=after[i].name, status="added"))
        elif i not in after:
            diffs.append(AgentDiff(id=i, name=before[i].name, status="removed"))
        elif i in changed and graph_a is not None and graph_b is not None:
            diffs.append(agent_diff(i, after[i].name, graph_a, graph_b))
    shown = [d for d in diffs if d.status != "unchanged"]
    return DiffReport(
        snapshot_a=a.id,
        snapshot_b=b.id,
        agents=shown,
        unchanged=len(ids) - len(shown),
        bytes_read=source_a.stats.bytes + source_b.stats.bytes,
    )


def _changed(a: AgentEntry, b: AgentEntry) -> bool:
    return a.digest != b.digest or a.messages != b.messages or a.passages != b.passages or a.tags != b.tags


def agent_diff(agent_id: str, name: str, a: Subgraph, b: Subgraph) -> AgentDiff:
    diff = AgentDiff(id=agent_id, name=name, status="changed")
    diff.fields = _field_changes(_one(a, "agents", "id", agent_id), _one(b, "agents", "id", agent_id))
    _blocks(diff, agent_id, a, b)
    before, after = _messages(a, agent_id), _messages(b, agent_id)
    diff.messages_added = [after[i] for i in after if i not in before]
    diff.messages_removed = [before[i] for i in before if i not in after]
    for kind, table, column, named in (
        ("tools", "tools_agents", "tool_id", ("tools", "name")),
        ("folders", "sources_agents", "source_id", ("sources", "name")),
    ):
        old, new = _attached(a, table, column, agent_id, named), _attached(b, table, column, agent_id, named)
        setattr(diff, f"{kind}_attached", [new[i] for i in sorted(new.keys() - old.keys())])
        setattr(diff, f"{kind}_detached", [old[i] for i in sorted(old.keys() - new.keys())])
    old_passages, new_passages = _passages(a, agent_id), _passages(b, agent_id)
    diff.passages_added = [new_passages[i] for i in new_passages if i not in old_passages]
    diff.passages_removed = [old_passages[i] for i in old_passages if i not in new_passages]
    if not any(value for key, value in diff.model_dump().items() if key not in ("id", "name", "status")):
        diff.status = "unchanged"
    return diff


def _one(graph: Subgraph, table: str, column: str, value: str) -> dict[str, str | None]:
    rows = graph.rows(table)
    if rows is None:
        return {}
    return next(rows.where_in(column, [value]).records(), {})


def _field_changes(a: dict[str, str | None], b: dict[str, str | None]) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if k not in IGNORED_FIELDS and a.get(k) != b.get(k))


def _blocks(diff: AgentDiff, agent_id: str, a: Subgraph, b: Subgraph) -> None:
    old, new = _agent_blocks(a, agent_id), _agent_blocks(b, agent_id)
    diff.blocks_attached = [Item(id=i, name=new[i][0]) for i in sorted(new.keys() - old.keys())]
    diff.blocks_detached = [Item(id=i, name=old[i][0]) for i in sorted(old.keys() - new.keys())]
    for block_id in sorted(old.keys() & new.keys()):
        (label, before), (_, after) = old[block_id], new[block_id]
        if before != after:
            text = "".join(
                difflib.unified_diff(
                    _lines(before), _lines(after), fromfile=f"a/{label}", tofile=f"b/{label}"
                )
            )
            diff.blocks_changed.append(BlockChange(id=block_id, label=label, diff=text))


def _lines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines()] or ["\n"]


def _agent_blocks(graph: Subgraph, agent_id: str) -> dict[str, tuple[str, str]]:
    """Block id → (label, value) of the blocks attached to the agent."""
    links, blocks = graph.rows("blocks_agents"), graph.rows("block")
    if links is None or blocks is None:
        return {}
    attached = {r["block_id"] for r in links.where_in("agent_id", [agent_id]).records() if r["block_id"]}
    return {
        r["id"]: (r.get("label") or "", r.get("value") or "")
        for r in blocks.where_in("id", attached).records()
        if r["id"]
    }


def _messages(graph: Subgraph, agent_id: str) -> dict[str, Item]:
    rows = graph.rows("messages")
    if rows is None:
        return {}
    return {
        r["id"]: Item(id=r["id"], name=f"{r.get('role')}: {message_text(r)}")
        for r in rows.where_in("agent_id", [agent_id]).records()
        if r["id"]
    }


def message_text(record: dict[str, str | None]) -> str:
    """A one-line excerpt of a message: its text parts, else its tool calls."""
    parts: list[str] = []
    for column in ("content", "tool_calls"):
        try:
            value: Any = json.loads(record.get(column) or "null")
        except ValueError:
            continue
        for part in value if isinstance(value, list) else []:
            if isinstance(part, dict):
                text = part.get("text") or (part.get("function") or {}).get("name")
                if text:
                    parts.append(str(text))
    text = " ".join(" ".join(parts).split()) or (record.get("text") or "")
    return text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")


def _attached(
    graph: Subgraph, table: str, column: str, agent_id: str, named: tuple[str, str]
) -> dict[str, Item]:
    links = graph.rows(table)
    if links is None:
        return {}
    ids = {str(r[column]) for r in links.where_in("agent_id", [agent_id]).records() if r[column]}
    names: dict[str | None, str] = {}
    entities = graph.rows(named[0])
    if entities is not None:
        names = {r["id"]: r.get(named[1]) or "" for r in entities.where_in("id", ids).records()}
    return {i: Item(id=i, name=names.get(i, "")) for i in ids}


def _passages(graph: Subgraph, agent_id: str) -> dict[str, Item]:
    links, passages = graph.rows("archives_agents"), graph.rows("archival_passages")
    if links is None or passages is None:
        return {}
    archives = {r["archive_id"] for r in links.where_in("agent_id", [agent_id]).records() if r["archive_id"]}
    return {
        r["id"]: Item(id=r["id"], name=(r.get("text") or "")[:EXCERPT])
        for r in passages.where_in("archive_id", archives).records()
        if r["id"]
    }
