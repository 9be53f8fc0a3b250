"""Database rows → an agent file, the way Letta 0.16.8's ``AgentSerializationManager.export`` does.

Given a connection (already inside the caller's read transaction, so every query sees one
instant), :func:`build_agent_file` reads the agents' subgraph and returns an :class:`AgentFile`.
The output matches Letta's export (same entities, ids numbered in first-encounter order, the
same forced ``CreateAgent`` flags, secrets blanked), with three deliberate differences that
keep Letta's importer working where its own export breaks (docs/LETTA.md §7):

* folders attached through ``sources_agents`` are listed even when no file row references
  them (Letta's export references them without listing them, and its import then fails);
* ``groups[].shared_block_ids`` are remapped to file ids (Letta leaks database ids there);
* ``compaction_settings`` and block ``tags``/``hidden`` are exported (Letta's importer honours
  them; Letta's export leaves them out and the importer invents defaults).

``complete=True`` adds the ``lifeboat`` extras (see :class:`CompleteExtras`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from lifeboat.errors import UsageError
from lifeboat.letta.agent_config import file_window_defaults
from lifeboat.letta.agent_file import (
    AgentEntry,
    AgentFile,
    GroupEntry,
    MessageEntry,
    MessageExtra,
)
from lifeboat.letta.agent_file_defaults import DEFAULT_TIMEZONE
from lifeboat.letta.agent_file_entries import (
    FileIds,
    Row,
    block_entry,
    file_agent_entry,
    file_entry,
    mcp_server_entry,
    source_entry,
    tool_entry,
)
from lifeboat.letta.agent_file_export_extras import CompleteExtrasQueries, rows_of


def _by(rows: Iterable[Row], key: str) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def resolve_agent_ids(conn: psycopg.Connection, wanted: Sequence[str] | None) -> list[str]:
    """The requested agents (all when ``wanted`` is None), refusing unknown ids."""
    if wanted is None:
        return [row["id"] for row in rows_of(conn, "SELECT id FROM agents ORDER BY created_at, id")]
    found = {row["id"] for row in rows_of(conn, "SELECT id FROM agents WHERE id = ANY(%s)", [list(wanted)])}
    missing = [agent_id for agent_id in wanted if agent_id not in found]
    if missing:
        raise UsageError(f"no such agent: {', '.join(missing[:5])}")
    return list(dict.fromkeys(wanted))


def group_members(conn: psycopg.Connection, agent_ids: Sequence[str]) -> dict[str, list[str]]:
    """manager agent id → participant agent ids, for groups managed by ``agent_ids``."""
    rows = rows_of(
        conn,
        "SELECT manager_agent_id, agent_ids FROM groups WHERE manager_agent_id = ANY(%s)",
        [list(agent_ids)],
    )
    members: dict[str, list[str]] = {}
    for row in rows:
        members.setdefault(row["manager_agent_id"], []).extend(row["agent_ids"] or [])
    return members


def revision(conn: psycopg.Connection) -> str:
    try:
        rows = rows_of(conn, "SELECT version_num FROM alembic_version")
    except psycopg.errors.UndefinedTable:
        raise UsageError("the database has no alembic_version table: is it a Letta database?") from None
    return rows[0]["version_num"] if rows else "unknown"


class _Export(CompleteExtrasQueries):
    """One export: the agents, everything they reference, and the id map."""

    def __init__(self, conn: psycopg.Connection, agent_ids: Sequence[str], complete: bool) -> None:
        self.conn = conn
        self.complete = complete
        self.ids = FileIds()
        self._message_extras: dict[str, MessageExtra] = {}
        self.sources_agents: dict[str, list[Row]] = {}
        self.agent_rows = self._agents_with_group_members(list(agent_ids))
        self.agent_ids = [row["id"] for row in self.agent_rows]

    def _agents_with_group_members(self, agent_ids: list[str]) -> list[Row]:
        members = [m for ids in group_members(self.conn, agent_ids).values() for m in ids]
        wanted = agent_ids + [m for m in dict.fromkeys(members) if m not in agent_ids]
        rows = {
            row["id"]: row for row in rows_of(self.conn, "SELECT * FROM agents WHERE id = ANY(%s)", [wanted])
        }
        missing = [agent_id for agent_id in wanted if agent_id not in rows]
        if missing:
            raise UsageError(f"no such agent: {', '.join(missing[:5])}")
        return [rows[agent_id] for agent_id in wanted]

    def build(self, created_at: datetime | None = None) -> AgentFile:
        tools = self._tools()
        blocks = self._blocks()
        mcp_servers = self._mcp_servers(tools)
        for server in mcp_servers:
            self.ids(server["id"], "mcp_server")
        files_agents = self._files_agents()
        sources, files = self._sources_and_files(files_agents)
        groups = rows_of(
            self.conn, "SELECT * FROM groups WHERE manager_agent_id = ANY(%s) ORDER BY id", [self.agent_ids]
        )
        for group in groups:  # before the messages, which name their group
            self.ids(group["id"], "group")
        agents = [self._agent(row, tools, blocks, files_agents, groups) for row in self.agent_rows]
        doc = AgentFile(
            agents=agents,
            groups=[self._group(row, blocks) for row in groups],
            blocks=[block_entry(self.ids, row) for row in _unique(blocks, "label")],
            files=[file_entry(self.ids, row) for row in files],
            sources=[source_entry(self.ids, row) for row in sources],
            tools=[tool_entry(self.ids, row) for row in _unique(tools, "name")],
            mcp_servers=[mcp_server_entry(self.ids, row) for row in mcp_servers],
            skills=[],
            metadata={"revision_id": revision(self.conn)},
            created_at=created_at or datetime.now(UTC),
        )
        if self.complete:
            doc.lifeboat = self._extras(files)
        return doc

    # ---- shared entities ----

    def _tools(self) -> list[Row]:
        return rows_of(
            self.conn,
            "SELECT ta.agent_id, t.* FROM tools_agents ta JOIN tools t ON t.id = ta.tool_id"
            " WHERE ta.agent_id = ANY(%s) ORDER BY t.name, t.id",
            [self.agent_ids],
        )

    def _blocks(self) -> list[Row]:
        return rows_of(
            self.conn,
            "SELECT ba.agent_id, b.*, COALESCE((SELECT array_agg(bt.tag ORDER BY bt.tag) FROM blocks_tags bt"
            " WHERE bt.block_id = b.id), '{}') AS tags"
            " FROM blocks_agents ba JOIN block b ON b.id = ba.block_id"
            " WHERE ba.agent_id = ANY(%s) ORDER BY b.label, b.id",
            [self.agent_ids],
        )

    def _mcp_servers(self, tools: list[Row]) -> list[Row]:
        server_ids, server_names = set(), set()
        for tool in tools:
            mcp = (tool.get("metadata_") or {}).get("mcp")
            if isinstance(mcp, dict):
                if mcp.get("server_id"):
                    server_ids.add(str(mcp["server_id"]))
                elif mcp.get("server_name"):
                    server_names.add(str(mcp["server_name"]))
        if not server_ids and not server_names:
            return []
        organization = self.agent_rows[0]["organization_id"]
        return rows_of(
            self.conn,
            "SELECT * FROM mcp_server WHERE id = ANY(%s) OR (server_name = ANY(%s) AND organization_id = %s)"
            " ORDER BY server_name, id",
            [sorted(server_ids), sorted(server_names), organization],
        )

    def _files_agents(self) -> list[Row]:
        return rows_of(
            self.conn,
            "SELECT * FROM files_agents WHERE agent_id = ANY(%s) AND NOT is_deleted ORDER BY created_at, id",
            [self.agent_ids],
        )

    def _sources_and_files(self, files_agents: list[Row]) -> tuple[list[Row], list[Row]]:
        attached = rows_of(
            self.conn,
            "SELECT agent_id, source_id FROM sources_agents WHERE agent_id = ANY(%s) ORDER BY agent_id, source_id",
            [self.agent_ids],
        )
        self.sources_agents = _by(attached, "agent_id")
        source_ids = sorted({r["source_id"] for r in files_agents} | {r["source_id"] for r in attached})
        file_ids = sorted({r["file_id"] for r in files_agents})
        sources = rows_of(
            self.conn, "SELECT * FROM sources WHERE id = ANY(%s) ORDER BY name, id", [source_ids]
        )
        files = rows_of(
            self.conn,
            "SELECT f.*, c.text AS content FROM files f LEFT JOIN file_contents c ON c.file_id = f.id"
            " WHERE f.id = ANY(%s) ORDER BY f.created_at, f.id",
            [file_ids],
        )
        return sources, files

    # ---- agents ----

    def _agent(
        self, row: Row, tools: list[Row], blocks: list[Row], files_agents: list[Row], groups: list[Row]
    ) -> AgentEntry:
        agent_id = self.ids(row["id"], "agent")
        messages, in_context = self._messages(row)
        llm_config = row["llm_config"] or {}
        max_files, char_limit = file_window_defaults(llm_config.get("context_window"))
        secrets: dict[str, str | None] = {r["key"]: "" for r in self._env_vars(row["id"])}  # values blanked
        entry = AgentEntry(
            id=agent_id,
            name=row["name"],
            agent_type=row["agent_type"] or "letta_v1_agent",
            system=row["system"],
            description=row["description"],
            metadata=row["metadata_"],
            llm_config=row["llm_config"],
            embedding_config=row["embedding_config"],
            compaction_settings=row["compaction_settings"],
            tool_rules=row["tool_rules"],
            tags=self._tags(row["id"]),
            response_format=row["response_format"],
            message_buffer_autoclear=bool(row["message_buffer_autoclear"]),
            enable_sleeptime=False,  # Letta's export forces this; the group carries the relationship
            timezone=row["timezone"] or DEFAULT_TIMEZONE,
            max_files_open=row["max_files_open"] or max_files,
            per_file_view_window_char_limit=row["per_file_view_window_char_limit"] or char_limit,
            secrets=secrets or None,  # Letta's export: None without secrets, but {} below
            tool_exec_environment_variables=secrets,
            in_context_message_ids=in_context,
            messages=messages,
        )
        entry.tool_ids = [self.ids(t["id"], "tool") for t in tools if t["agent_id"] == row["id"]]
        entry.source_ids = [
            self.ids(s["source_id"], "source") for s in self.sources_agents.get(row["id"], [])
        ]
        entry.block_ids = [self.ids(b["id"], "block") for b in blocks if b["agent_id"] == row["id"]]
        entry.files_agents = [
            file_agent_entry(self.ids, fa, agent_id) for fa in files_agents if fa["agent_id"] == row["id"]
        ]
        entry.group_ids = [self.ids(g["id"], "group") for g in groups if g["manager_agent_id"] == row["id"]]
        return entry

    def _tags(self, agent_id: str) -> list[str]:
        rows = rows_of(self.conn, "SELECT tag FROM agents_tags WHERE agent_id = %s ORDER BY tag", [agent_id])
        return [r["tag"] for r in rows]

    def _env_vars(self, agent_id: str) -> list[Row]:
        return rows_of(
            self.conn,
            "SELECT key FROM agent_environment_variables WHERE agent_id = %s ORDER BY created_at, key",
            [agent_id],
        )

    def _messages(self, agent: Row) -> tuple[list[MessageEntry], list[str]]:
        """Letta exports the in-context messages; complete mode adds the whole default history."""
        in_context_db = list(agent["message_ids"] or [])
        if self.complete:
            rows = rows_of(
                self.conn,
                "SELECT * FROM messages WHERE agent_id = %s AND (conversation_id IS NULL OR id = ANY(%s))"
                " AND NOT is_deleted ORDER BY sequence_id",
                [agent["id"], in_context_db],
            )
        elif in_context_db:
            found = {
                r["id"]: r
                for r in rows_of(
                    self.conn, "SELECT * FROM messages WHERE id = ANY(%s) AND NOT is_deleted", [in_context_db]
                )
            }
            rows = [found[m] for m in in_context_db if m in found]
        else:  # Letta falls back to the latest 50 messages
            rows = rows_of(
                self.conn,
                "SELECT * FROM (SELECT * FROM messages WHERE agent_id = %s AND NOT is_deleted"
                " ORDER BY sequence_id DESC LIMIT 50) m ORDER BY sequence_id",
                [agent["id"]],
            )
        agent_file_id = self.ids(agent["id"], "agent")
        entries = [self._message(r, agent_file_id) for r in rows]
        in_context = [self.ids(m, "message") for m in in_context_db if self.ids.get(m, "message")]
        return entries, in_context

    def _message(self, row: Row, agent_file_id: str) -> MessageEntry:
        content = row["content"]
        if not content and row["text"]:
            content = [{"type": "text", "text": row["text"], "signature": None}]
        entry = MessageEntry(
            id=self.ids(row["id"], "message"),
            role=row["role"],
            content=content,
            name=row["name"],
            model=row["model"],
            agent_id=agent_file_id,
            tool_calls=row["tool_calls"] or None,
            tool_call_id=row["tool_call_id"],
            tool_returns=row["tool_returns"],
            created_at=row["created_at"],
            approve=row["approve"],
            approval_request_id=row["approval_request_id"],
            denial_reason=row["denial_reason"],
            approvals=row["approvals"],
            group_id=self.ids.get(row["group_id"], "group") or row["group_id"] if row["group_id"] else None,
            batch_item_id=row["batch_item_id"],
            otid=row["otid"],
            sender_id=row["sender_id"],
        )
        if self.complete:
            self._message_extras[entry.id] = MessageExtra(
                text=row["text"], is_err=row["is_err"], updated_at=row["updated_at"]
            )
        return entry

    # ---- other entities ----

    def _group(self, row: Row, blocks: list[Row]) -> GroupEntry:
        config: dict[str, Any] = {"manager_type": row["manager_type"]}
        if row["manager_agent_id"]:
            config["manager_agent_id"] = self.ids(row["manager_agent_id"], "agent")
        for key in ("max_turns", "termination_token", "sleeptime_agent_frequency"):
            if row[key] is not None:
                config[key] = row[key]
        for key in ("max_message_buffer_length", "min_message_buffer_length"):
            if row[key] is not None:
                config[key] = row[key]
        shared = rows_of(
            self.conn, "SELECT block_id FROM groups_blocks WHERE group_id = %s ORDER BY block_id", [row["id"]]
        )
        exported = {b["id"] for b in blocks}
        return GroupEntry(
            id=self.ids(row["id"], "group"),
            agent_ids=[self.ids(a, "agent") for a in row["agent_ids"] or []],
            description=row["description"] or "",
            manager_config=config,
            project_id=row["project_id"],
            shared_block_ids=[self.ids(s["block_id"], "block") for s in shared if s["block_id"] in exported],
            hidden=row["hidden"],
        )


def _unique(rows: list[Row], sort_key: str) -> list[Row]:
    """Rows deduplicated by id (a block or tool shared by several exported agents appears once)."""
    unique = {row["id"]: row for row in rows}
    return sorted(unique.values(), key=lambda row: (row[sort_key] or "", row["id"]))


def build_agent_file(
    conn: psycopg.Connection,
    agent_ids: Sequence[str],
    *,
    complete: bool = False,
    created_at: datetime | None = None,
) -> tuple[AgentFile, dict[str, str]]:
    """Export ``agent_ids`` (plus the members of groups they manage) as one agent file.

    Returns the document and the id map (file id → database id). Run it inside one
    REPEATABLE READ transaction so the file is a consistent picture.
    """
    export = _Export(conn, agent_ids, complete)
    doc = export.build(created_at)
    return doc, export.ids.mapping()
