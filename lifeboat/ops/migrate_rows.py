"""Letta V1 rows (an agents' subgraph) → the plain values the Letta Code writer takes.

One agent's rows are defined by :mod:`lifeboat.letta.subgraph`; this module picks each agent's
part out of a subgraph of several, parses the JSON columns and decides what each row becomes:
messages go to conversations, blocks to core memory, archival passages, files and custom tools
to memory files. Everything else the agent has is counted under ``left_out`` with the reason.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from lifeboat.letta.subgraph import Subgraph, TableRows, copy_field
from lifeboat.letta_code.model import (
    SourceAgent,
    SourceBlock,
    SourceConversation,
    SourceFile,
    SourceMessage,
    SourcePassage,
    SourceTool,
)

Record = dict[str, str | None]

#: Tool types that are Letta V1's own (Letta Code has its own toolset instead).
BUILTIN_TOOL_PREFIX = "letta_"
CUSTOM_TOOL_TYPES = ("custom",)

#: Owned tables with no counterpart: table -> reason (counted per agent).
NO_COUNTERPART = {
    "agent_environment_variables": "agent secrets are not exported; set them again in Letta Code's secret store",
    "runs": "run records are execution telemetry with no Letta Code counterpart",
    "steps": "step records are execution telemetry with no Letta Code counterpart",
    "llm_batch_items": "batch API state has no Letta Code counterpart",
    "identities_agents": "identities have no Letta Code counterpart",
}


def parse_json(value: str | None, default: Any) -> Any:
    if value is None:
        return default
    if value == "[]":  # most message columns (tool calls, returns, approvals): skip the parser
        return []
    try:
        return json.loads(value)
    except ValueError:
        return default


def is_true(value: str | None) -> bool:
    return value == "t"


#: Columns read per table (the others, e.g. embeddings, are never decoded).
COLUMNS: dict[str, tuple[str, ...]] = {
    "messages": (
        "id", "agent_id", "role", "created_at", "content", "tool_calls", "tool_call_id", "tool_returns",
        "approvals", "approve", "denial_reason", "name", "model", "otid", "text", "conversation_id",
        "sequence_id", "is_deleted",
    ),
    "archival_passages": ("id", "archive_id", "text", "created_at", "tags", "is_deleted"),
    "source_passages": ("id", "file_id"),
    "runs": ("id", "agent_id"),
    "steps": ("id", "agent_id"),
}  # fmt: skip


def records(rows: TableRows, wanted: Iterable[str] | None = None) -> Iterator[Record]:
    """Rows as dicts of the ``wanted`` columns only (all when None)."""
    names = [c for c in (wanted or rows.columns) if rows.has(c)]
    positions = [rows.index(c) for c in names]
    for line in rows.lines:
        yield {
            column: copy_field(raw)
            for column, raw in zip(names, rows.fields_at(line, positions), strict=True)
        }


class Rows:
    """A subgraph's rows grouped by the column its consumers look them up by."""

    def __init__(self, graph: Subgraph) -> None:
        self.graph = graph
        self._index: dict[tuple[str, str], dict[str, list[Record]]] = {}

    def by(self, table: str, column: str) -> dict[str, list[Record]]:
        key = (table, column)
        if key not in self._index:
            grouped: dict[str, list[Record]] = defaultdict(list)
            rows = self.graph.rows(table)
            if rows is not None and rows.has(column):
                for record in records(rows, COLUMNS.get(table)):
                    grouped[record[column] or ""].append(record)
            self._index[key] = grouped
        return self._index[key]

    def one(self, table: str, ident: str | None) -> Record | None:
        found = self.by(table, "id").get(ident or "")
        return found[0] if found else None


def source_agents(
    graph: Subgraph, agent_ids: Iterable[str], block_users: TableRows | None, names: dict[str, str]
) -> list[SourceAgent]:
    """The writer's input for ``agent_ids`` (each must be in ``graph``).

    ``block_users``: ``blocks_agents`` rows of every agent (to say who else used a shared
    block); ``names``: agent id → name, for those notes.
    """
    rows = Rows(graph)
    users: dict[str, list[str]] = defaultdict(list)
    for record in block_users.records() if block_users is not None else []:
        users[record["block_id"] or ""].append(record["agent_id"] or "")
    return [_agent(rows, agent_id, users, names) for agent_id in agent_ids]


def _agent(rows: Rows, agent_id: str, users: dict[str, list[str]], names: dict[str, str]) -> SourceAgent:
    record = rows.one("agents", agent_id)
    if record is None:
        raise KeyError(agent_id)
    left_out: dict[str, tuple[int, str]] = {}
    agent = SourceAgent(
        id=agent_id,
        name=record.get("name") or agent_id,
        created_at=record.get("created_at") or "1970-01-01 00:00:00+00",
        updated_at=record.get("updated_at") or record.get("created_at") or "1970-01-01 00:00:00+00",
        system=record.get("system") or "",
        description=record.get("description"),
        agent_type=record.get("agent_type"),
        tags=sorted(r["tag"] or "" for r in rows.by("agents_tags", "agent_id").get(agent_id, [])),
        llm_config=parse_json(record.get("llm_config"), {}) or {},
        hidden=is_true(record.get("hidden")),
        left_out=left_out,
    )
    agent.conversations = _conversations(rows, agent_id, record, left_out)
    agent.blocks = _blocks(rows, agent_id, users, names)
    agent.passages = _passages(rows, agent_id, left_out)
    agent.files = _files(rows, agent_id, left_out)
    agent.tools = _tools(rows, agent_id, left_out)
    for table, reason in NO_COUNTERPART.items():
        count = len(rows.by(table, "agent_id").get(agent_id, []))
        if count:
            left_out[table] = (count, reason)
    isolated = sum(
        len(rows.by("blocks_conversations", "conversation_id").get(c.id or "", []))
        for c in agent.conversations
    )
    if isolated:
        left_out["conversation blocks"] = (
            isolated,
            "conversation-scoped block copies have no Letta Code counterpart",
        )
    groups = rows.by("groups_agents", "agent_id").get(agent_id, [])
    managed = [g for g in rows.by("groups", "manager_agent_id").get(agent_id, [])]
    if groups or managed:
        left_out["groups"] = (
            len(groups) + len(managed),
            "multi-agent groups (e.g. sleeptime) have no Letta Code counterpart; each member is migrated as its own agent",
        )
    return agent


def _message(record: Record) -> SourceMessage:
    return SourceMessage(
        id=record["id"] or "",
        role=record.get("role") or "",
        created_at=record.get("created_at") or "1970-01-01 00:00:00+00",
        content=_dicts(parse_json(record.get("content"), [])),
        tool_calls=_dicts(parse_json(record.get("tool_calls"), [])),
        tool_call_id=record.get("tool_call_id"),
        tool_returns=_dicts(parse_json(record.get("tool_returns"), [])),
        approvals=_dicts(parse_json(record.get("approvals"), [])),
        approve=None if record.get("approve") is None else is_true(record.get("approve")),
        denial_reason=record.get("denial_reason"),
        name=record.get("name"),
        model=record.get("model"),
        otid=record.get("otid"),
        text=record.get("text"),
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _sequence(record: Record) -> tuple[int, str]:
    try:
        return int(record.get("sequence_id") or 0), record["id"] or ""
    except ValueError:
        return 0, record["id"] or ""


def _conversations(
    rows: Rows, agent_id: str, agent: Record, left_out: dict[str, tuple[int, str]]
) -> list[SourceConversation]:
    messages = sorted(rows.by("messages", "agent_id").get(agent_id, []), key=_sequence)
    live = [m for m in messages if not is_true(m.get("is_deleted"))]
    if len(live) != len(messages):
        left_out["deleted messages"] = (
            len(messages) - len(live),
            "soft-deleted in V1 (a deleted conversation)",
        )
    by_conversation: dict[str | None, list[Record]] = defaultdict(list)
    for message in live:
        by_conversation[message.get("conversation_id")].append(message)
    default = SourceConversation(
        id=None,
        messages=[_message(m) for m in by_conversation.pop(None, [])],
        in_context_ids=[i for i in parse_json(agent.get("message_ids"), []) if isinstance(i, str)],
        created_at=agent.get("created_at") or "1970-01-01 00:00:00+00",
    )
    result = [default]
    for conversation in sorted(
        rows.by("conversations", "agent_id").get(agent_id, []),
        key=lambda c: (c.get("created_at") or "", c["id"] or ""),
    ):
        ident = conversation["id"] or ""
        mine = by_conversation.pop(ident, [])
        if is_true(conversation.get("is_deleted")):
            continue
        links = [
            link
            for link in rows.by("conversation_messages", "conversation_id").get(ident, [])
            if is_true(link.get("in_context")) and not is_true(link.get("is_deleted"))
        ]
        links.sort(key=lambda link: int(link.get("position") or 0))
        result.append(
            SourceConversation(
                id=ident,
                messages=[_message(m) for m in mine],
                in_context_ids=[link["message_id"] or "" for link in links],
                created_at=conversation.get("created_at") or default.created_at,
                summary=conversation.get("summary"),
            )
        )
    orphans = sum(len(v) for v in by_conversation.values())
    if orphans:
        left_out["messages of missing conversations"] = (orphans, "their conversation row is gone or deleted")
    return result


def _blocks(
    rows: Rows, agent_id: str, users: dict[str, list[str]], names: dict[str, str]
) -> list[SourceBlock]:
    blocks = []
    for link in rows.by("blocks_agents", "agent_id").get(agent_id, []):
        record = rows.one("block", link.get("block_id"))
        if record is None:
            continue
        ident = record["id"] or ""
        others = sorted({names.get(user, user) for user in users.get(ident, []) if user != agent_id})
        history = sorted(
            rows.by("block_history", "block_id").get(ident, []),
            key=lambda h: int(h.get("sequence_number") or 0),
        )
        blocks.append(
            SourceBlock(
                id=ident,
                label=record.get("label") or "block",
                value=record.get("value") or "",
                description=record.get("description"),
                limit=int(record.get("limit") or 0) or None,
                read_only=is_true(record.get("read_only")),
                shared_with=others,
                history=[dict(h) for h in history],
            )
        )
    return blocks


def _passages(rows: Rows, agent_id: str, left_out: dict[str, tuple[int, str]]) -> list[SourcePassage]:
    passages = []
    for link in rows.by("archives_agents", "agent_id").get(agent_id, []):
        archive = rows.one("archives", link.get("archive_id"))
        name = (archive or {}).get("name") or link.get("archive_id") or ""
        for record in rows.by("archival_passages", "archive_id").get(link.get("archive_id") or "", []):
            if is_true(record.get("is_deleted")):
                continue
            tags = parse_json(record.get("tags"), []) or []
            passages.append(
                SourcePassage(
                    id=record["id"] or "",
                    text=record.get("text") or "",
                    created_at=record.get("created_at") or "1970-01-01 00:00:00+00",
                    tags=[str(t) for t in tags] if isinstance(tags, list) else [],
                    archive=name,
                )
            )
    if passages:
        left_out["passage embeddings"] = (
            len(passages),
            "embeddings omitted: Letta Code has no vector store (text kept)",
        )
    return passages


def _files(rows: Rows, agent_id: str, left_out: dict[str, tuple[int, str]]) -> list[SourceFile]:
    files = []
    for link in rows.by("files_agents", "agent_id").get(agent_id, []):
        if is_true(link.get("is_deleted")):
            continue
        folder = rows.one("sources", link.get("source_id"))
        content = rows.by("file_contents", "file_id").get(link.get("file_id") or "", [])
        start, end = link.get("start_line"), link.get("end_line")
        files.append(
            SourceFile(
                id=link.get("file_id") or "",
                file_name=link.get("file_name") or "file",
                folder=(folder or {}).get("name") or link.get("source_id") or "",
                text=content[0].get("text") if content else None,
                is_open=is_true(link.get("is_open")),
                visible_lines=f"{start}-{end}" if start and end else None,
            )
        )
    chunks = sum(len(rows.by("source_passages", "file_id").get(f.id, [])) for f in files)
    if chunks:
        left_out["file chunk embeddings"] = (
            chunks,
            "folder search chunks and their embeddings are derived data; the file text is kept",
        )
    return files


def _tools(rows: Rows, agent_id: str, left_out: dict[str, tuple[int, str]]) -> list[SourceTool]:
    tools, builtin, other = [], 0, 0
    for link in rows.by("tools_agents", "agent_id").get(agent_id, []):
        record = rows.one("tools", link.get("tool_id"))
        if record is None:
            continue
        tool_type = record.get("tool_type") or ""
        if tool_type.startswith(BUILTIN_TOOL_PREFIX):
            builtin += 1
        elif tool_type in CUSTOM_TOOL_TYPES:
            schema = parse_json(record.get("json_schema"), None)
            requirements = parse_json(record.get("pip_requirements"), []) or []
            tools.append(
                SourceTool(
                    id=record["id"] or "",
                    name=record.get("name") or "tool",
                    tool_type=tool_type,
                    description=record.get("description"),
                    source_code=record.get("source_code"),
                    source_type=record.get("source_type"),
                    json_schema=schema if isinstance(schema, dict) else None,
                    pip_requirements=requirements if isinstance(requirements, list) else [],
                )
            )
        else:
            other += 1
    if builtin:
        left_out["built-in tools"] = (builtin, "Letta V1's own tools; Letta Code brings its own toolset")
    if other:
        left_out["external tools"] = (
            other,
            "MCP/external tools: connect their servers in Letta Code (letta mcp)",
        )
    return tools
