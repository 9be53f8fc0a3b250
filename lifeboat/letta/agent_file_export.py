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

import base64
import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lifeboat.errors import UsageError
from lifeboat.letta.agent_config import file_window_defaults
from lifeboat.letta.agent_file import (
    AgentEntry,
    AgentExtra,
    AgentFile,
    ArchiveEntry,
    BlockEntry,
    CompleteExtras,
    ConversationEntry,
    ConversationMember,
    FileAgentEntry,
    FileEntry,
    GroupEntry,
    GroupState,
    IdentityEntry,
    McpServerEntry,
    MessageEntry,
    MessageExtra,
    PassageEntry,
    SourceEntry,
    ToolEntry,
)
from lifeboat.letta.agent_file_defaults import DEFAULT_TIMEZONE

Row = dict[str, Any]


class FileIds:
    """Database id → file-local ``<prefix>-<n>`` id, one counter per prefix (Letta's scheme)."""

    def __init__(self) -> None:
        self._map: dict[str, str] = {}
        self._counters: dict[str, int] = {}

    def __call__(self, db_id: str, prefix: str) -> str:
        key = f"{prefix}\x00{db_id}"
        if key not in self._map:
            number = self._counters.get(prefix, 0)
            self._counters[prefix] = number + 1
            self._map[key] = f"{prefix}-{number}"
        return self._map[key]

    def get(self, db_id: str, prefix: str) -> str | None:
        return self._map.get(f"{prefix}\x00{db_id}")

    def mapping(self) -> dict[str, str]:
        """file id → database id, for reports."""
        return {file_id: key.split("\x00", 1)[1] for key, file_id in self._map.items()}


def _rows(conn: psycopg.Connection, query: str, params: Sequence[Any] = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def _by(rows: Iterable[Row], key: str) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def resolve_agent_ids(conn: psycopg.Connection, wanted: Sequence[str] | None) -> list[str]:
    """The requested agents (all when ``wanted`` is None), refusing unknown ids."""
    if wanted is None:
        return [row["id"] for row in _rows(conn, "SELECT id FROM agents ORDER BY created_at, id")]
    found = {row["id"] for row in _rows(conn, "SELECT id FROM agents WHERE id = ANY(%s)", [list(wanted)])}
    missing = [agent_id for agent_id in wanted if agent_id not in found]
    if missing:
        raise UsageError(f"no such agent: {', '.join(missing[:5])}")
    return list(dict.fromkeys(wanted))


def group_members(conn: psycopg.Connection, agent_ids: Sequence[str]) -> dict[str, list[str]]:
    """manager agent id → participant agent ids, for groups managed by ``agent_ids``."""
    rows = _rows(
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
        rows = _rows(conn, "SELECT version_num FROM alembic_version")
    except psycopg.errors.UndefinedTable:
        raise UsageError("the database has no alembic_version table: is it a Letta database?") from None
    return rows[0]["version_num"] if rows else "unknown"


class _Export:
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
            row["id"]: row for row in _rows(self.conn, "SELECT * FROM agents WHERE id = ANY(%s)", [wanted])
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
        groups = _rows(
            self.conn, "SELECT * FROM groups WHERE manager_agent_id = ANY(%s) ORDER BY id", [self.agent_ids]
        )
        for group in groups:  # before the messages, which name their group
            self.ids(group["id"], "group")
        agents = [self._agent(row, tools, blocks, files_agents, groups) for row in self.agent_rows]
        doc = AgentFile(
            agents=agents,
            groups=[self._group(row, blocks) for row in groups],
            blocks=[self._block(row) for row in _unique(blocks, "label")],
            files=[self._file(row) for row in files],
            sources=[self._source(row) for row in sources],
            tools=[self._tool(row) for row in _unique(tools, "name")],
            mcp_servers=[self._mcp_server(row) for row in mcp_servers],
            skills=[],
            metadata={"revision_id": revision(self.conn)},
            created_at=created_at or datetime.now(UTC),
        )
        if self.complete:
            doc.lifeboat = self._extras(files)
        return doc

    # ---- shared entities ----

    def _tools(self) -> list[Row]:
        return _rows(
            self.conn,
            "SELECT ta.agent_id, t.* FROM tools_agents ta JOIN tools t ON t.id = ta.tool_id"
            " WHERE ta.agent_id = ANY(%s) ORDER BY t.name, t.id",
            [self.agent_ids],
        )

    def _blocks(self) -> list[Row]:
        return _rows(
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
        return _rows(
            self.conn,
            "SELECT * FROM mcp_server WHERE id = ANY(%s) OR (server_name = ANY(%s) AND organization_id = %s)"
            " ORDER BY server_name, id",
            [sorted(server_ids), sorted(server_names), organization],
        )

    def _files_agents(self) -> list[Row]:
        return _rows(
            self.conn,
            "SELECT * FROM files_agents WHERE agent_id = ANY(%s) AND NOT is_deleted ORDER BY created_at, id",
            [self.agent_ids],
        )

    def _sources_and_files(self, files_agents: list[Row]) -> tuple[list[Row], list[Row]]:
        attached = _rows(
            self.conn,
            "SELECT agent_id, source_id FROM sources_agents WHERE agent_id = ANY(%s) ORDER BY agent_id, source_id",
            [self.agent_ids],
        )
        self.sources_agents = _by(attached, "agent_id")
        source_ids = sorted({r["source_id"] for r in files_agents} | {r["source_id"] for r in attached})
        file_ids = sorted({r["file_id"] for r in files_agents})
        sources = _rows(self.conn, "SELECT * FROM sources WHERE id = ANY(%s) ORDER BY name, id", [source_ids])
        files = _rows(
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
            self._file_agent(fa, agent_id) for fa in files_agents if fa["agent_id"] == row["id"]
        ]
        entry.group_ids = [self.ids(g["id"], "group") for g in groups if g["manager_agent_id"] == row["id"]]
        return entry

    def _tags(self, agent_id: str) -> list[str]:
        rows = _rows(self.conn, "SELECT tag FROM agents_tags WHERE agent_id = %s ORDER BY tag", [agent_id])
        return [r["tag"] for r in rows]

    def _env_vars(self, agent_id: str) -> list[Row]:
        return _rows(
            self.conn,
            "SELECT key FROM agent_environment_variables WHERE agent_id = %s ORDER BY created_at, key",
            [agent_id],
        )

    def _messages(self, agent: Row) -> tuple[list[MessageEntry], list[str]]:
        """Letta exports the in-context messages; complete mode adds the whole default history."""
        in_context_db = list(agent["message_ids"] or [])
        if self.complete:
            rows = _rows(
                self.conn,
                "SELECT * FROM messages WHERE agent_id = %s AND (conversation_id IS NULL OR id = ANY(%s))"
                " AND NOT is_deleted ORDER BY sequence_id",
                [agent["id"], in_context_db],
            )
        elif in_context_db:
            found = {
                r["id"]: r
                for r in _rows(
                    self.conn, "SELECT * FROM messages WHERE id = ANY(%s) AND NOT is_deleted", [in_context_db]
                )
            }
            rows = [found[m] for m in in_context_db if m in found]
        else:  # Letta falls back to the latest 50 messages
            rows = _rows(
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

    def _file_agent(self, row: Row, agent_file_id: str) -> FileAgentEntry:
        return FileAgentEntry(
            id=row["id"],
            agent_id=agent_file_id,
            file_id=self.ids(row["file_id"], "file"),
            source_id=self.ids(row["source_id"], "source"),
            file_name=row["file_name"],
            is_open=row["is_open"],
            visible_content=row["visible_content"],
            last_accessed_at=row["last_accessed_at"],
            start_line=row["start_line"],
            end_line=row["end_line"],
        )

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
        shared = _rows(
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

    def _block(self, row: Row) -> BlockEntry:
        return BlockEntry(
            id=self.ids(row["id"], "block"),
            label=row["label"],
            value=row["value"],
            limit=row["limit"],
            description=row["description"],
            read_only=row["read_only"],
            hidden=row["hidden"],
            metadata=row["metadata_"] or {},
            template_name=row["template_name"],
            is_template=row["is_template"],
            preserve_on_migration=row["preserve_on_migration"],
            project_id=row["project_id"],
            tags=list(row["tags"] or []) or None,
        )

    def _tool(self, row: Row) -> ToolEntry:
        return ToolEntry(
            id=self.ids(row["id"], "tool"),
            name=row["name"],
            tool_type=row["tool_type"] or "custom",
            description=row["description"],
            source_type=row["source_type"],
            source_code=row["source_code"],
            json_schema=row["json_schema"],
            args_json_schema=row["args_json_schema"],
            tags=list(row["tags"] or []),
            return_char_limit=row["return_char_limit"] or 50000,
            pip_requirements=row["pip_requirements"],
            npm_requirements=row["npm_requirements"],
            default_requires_approval=row["default_requires_approval"],
            enable_parallel_execution=row["enable_parallel_execution"],
            created_by_id=row["_created_by_id"],
            last_updated_by_id=row["_last_updated_by_id"],
            metadata_=row["metadata_"] or {},
            project_id=row["project_id"],
        )

    def _source(self, row: Row) -> SourceEntry:
        return SourceEntry(
            id=self.ids(row["id"], "source"),
            name=row["name"],
            description=row["description"],
            instructions=row["instructions"],
            metadata=row["metadata_"],
            embedding_config=row["embedding_config"],
        )

    def _file(self, row: Row) -> FileEntry:
        return FileEntry(
            id=self.ids(row["id"], "file"),
            source_id=self.ids(row["source_id"], "source"),
            file_name=row["file_name"],
            original_file_name=row["original_file_name"],
            file_path=row["file_path"],
            file_type=row["file_type"],
            file_size=row["file_size"],
            file_creation_date=row["file_creation_date"],
            file_last_modified_date=row["file_last_modified_date"],
            processing_status=row["processing_status"] or "pending",
            error_message=row["error_message"],
            total_chunks=row["total_chunks"],
            chunks_embedded=row["chunks_embedded"],
            content=row["content"],
        )

    def _mcp_server(self, row: Row) -> McpServerEntry:
        stdio = row["stdio_config"]
        if isinstance(stdio, dict):
            stdio = {k: v for k, v in stdio.items() if k != "env"}
        return McpServerEntry(
            id=self.ids(row["id"], "mcp_server"),
            server_type=row["server_type"],
            server_name=row["server_name"],
            server_url=row["server_url"],
            stdio_config=stdio,
            metadata_=row["metadata_"],
        )

    # ---- complete extras ----

    def _extras(self, files: list[Row]) -> CompleteExtras:
        extras = CompleteExtras()
        archive_links = _rows(
            self.conn,
            "SELECT * FROM archives_agents WHERE agent_id = ANY(%s) ORDER BY agent_id, archive_id",
            [self.agent_ids],
        )
        archive_ids = sorted({link["archive_id"] for link in archive_links})
        extras.archives = [
            self._archive(row)
            for row in _rows(
                self.conn, "SELECT * FROM archives WHERE id = ANY(%s) ORDER BY created_at, id", [archive_ids]
            )
        ]
        extras.passages = self._archival_passages(archive_ids)
        extras.source_passages = self._source_passages([f["id"] for f in files])
        extras.identities = self._identities()
        for row in self.agent_rows:
            extras.agents[self.ids(row["id"], "agent")] = self._agent_extra(row, archive_links, extras)
        extras.messages = dict(self._message_extras)  # after the conversations added theirs
        return extras

    def _agent_extra(self, row: Row, archive_links: list[Row], extras: CompleteExtras) -> AgentExtra:
        links = [link for link in archive_links if link["agent_id"] == row["id"]]
        groups = _rows(
            self.conn,
            "SELECT id, turns_counter, last_processed_message_id FROM groups WHERE manager_agent_id = %s",
            [row["id"]],
        )
        return AgentExtra(
            enable_sleeptime=row["enable_sleeptime"],
            hidden=row["hidden"],
            created_at=row["created_at"],
            last_run_completion=row["last_run_completion"],
            last_run_duration_ms=row["last_run_duration_ms"],
            last_stop_reason=row["last_stop_reason"],
            deployment_id=row["deployment_id"],
            entity_id=row["entity_id"],
            max_files_open=row["max_files_open"],
            per_file_view_window_char_limit=row["per_file_view_window_char_limit"],
            timezone=row["timezone"],
            archive_ids=[self.ids(link["archive_id"], "archive") for link in links],
            owned_archive_ids=[self.ids(link["archive_id"], "archive") for link in links if link["is_owner"]],
            identity_ids=[i.id for i in extras.identities if self.ids(row["id"], "agent") in i.agent_ids],
            conversations=self._conversations(row, extras),
            group_state={
                self.ids(g["id"], "group"): GroupState(
                    turns_counter=g["turns_counter"],
                    last_processed_message_id=self._message_ref(g["last_processed_message_id"]),
                )
                for g in groups
            },
        )

    def _message_ref(self, db_id: str | None) -> str | None:
        """A message id as a file id when exported, else None (it would dangle)."""
        return self.ids.get(db_id, "message") if db_id else None

    def _conversations(self, agent: Row, extras: CompleteExtras) -> list[ConversationEntry]:
        rows = _rows(
            self.conn,
            "SELECT * FROM conversations WHERE agent_id = %s AND NOT is_deleted ORDER BY created_at, id",
            [agent["id"]],
        )
        agent_file_id = self.ids(agent["id"], "agent")
        result = []
        for conv in rows:
            messages = _rows(
                self.conn,
                "SELECT * FROM messages WHERE conversation_id = %s AND NOT is_deleted ORDER BY sequence_id",
                [conv["id"]],
            )
            entries = [self._message(m, agent_file_id) for m in messages]
            members = _rows(
                self.conn,
                "SELECT message_id, position, in_context FROM conversation_messages"
                " WHERE conversation_id = %s AND NOT is_deleted ORDER BY position, id",
                [conv["id"]],
            )
            isolated = _rows(
                self.conn,
                "SELECT b.*, '{}'::text[] AS tags FROM blocks_conversations bc JOIN block b ON b.id = bc.block_id"
                " WHERE bc.conversation_id = %s ORDER BY b.label",
                [conv["id"]],
            )
            blocks = [self._block(b) for b in isolated]
            extras.isolated_blocks.extend(blocks)
            result.append(
                ConversationEntry(
                    id=self.ids(conv["id"], "conv"),
                    summary=conv["summary"],
                    model=conv["model"],
                    model_settings=conv["model_settings"],
                    last_message_at=conv["last_message_at"],
                    created_at=conv["created_at"],
                    messages=entries,
                    members=[
                        ConversationMember(
                            message_id=self._message_ref(m["message_id"]) or "",
                            position=m["position"],
                            in_context=m["in_context"],
                        )
                        for m in members
                        if self._message_ref(m["message_id"])
                    ],
                    isolated_block_ids=[b.id for b in blocks],
                )
            )
        return result

    def _archive(self, row: Row) -> ArchiveEntry:
        return ArchiveEntry(
            id=self.ids(row["id"], "archive"),
            name=row["name"],
            description=row["description"],
            vector_db_provider=row["vector_db_provider"] or "NATIVE",
            embedding_config=row["embedding_config"],
            metadata=row["metadata_"],
            created_at=row["created_at"],
        )

    def _archival_passages(self, archive_ids: list[str]) -> list[PassageEntry]:
        rows = _rows(
            self.conn,
            "SELECT id, archive_id, text, embedding::text AS embedding, embedding_config, metadata_, tags, created_at"
            " FROM archival_passages WHERE archive_id = ANY(%s) AND NOT is_deleted ORDER BY archive_id, created_at, id",
            [archive_ids],
        )
        return [self._passage(row, archive_id=self.ids(row["archive_id"], "archive")) for row in rows]

    def _source_passages(self, file_ids: list[str]) -> list[PassageEntry]:
        rows = _rows(
            self.conn,
            "SELECT id, file_id, source_id, file_name, text, embedding::text AS embedding, embedding_config,"
            " metadata_, tags, created_at FROM source_passages WHERE file_id = ANY(%s) AND NOT is_deleted"
            " ORDER BY file_id, created_at, id",
            [file_ids],
        )
        return [
            self._passage(
                row,
                file_id=self.ids(row["file_id"], "file"),
                source_id=self.ids(row["source_id"], "source"),
                file_name=row["file_name"],
            )
            for row in rows
        ]

    def _passage(self, row: Row, **refs: Any) -> PassageEntry:
        config = row["embedding_config"] or {}
        return PassageEntry(
            id=self.ids(row["id"], "passage"),
            text=row["text"],
            embedding=vector_to_base64(row["embedding"], config.get("embedding_dim")),
            embedding_config=row["embedding_config"],
            metadata=row["metadata_"] or {},
            tags=row["tags"],
            created_at=row["created_at"],
            **refs,
        )

    def _identities(self) -> list[IdentityEntry]:
        links = _rows(
            self.conn,
            "SELECT identity_id, agent_id FROM identities_agents WHERE agent_id = ANY(%s) ORDER BY identity_id, agent_id",
            [self.agent_ids],
        )
        identity_ids = sorted({link["identity_id"] for link in links})
        rows = _rows(
            self.conn, "SELECT * FROM identities WHERE id = ANY(%s) ORDER BY created_at, id", [identity_ids]
        )
        block_links = _rows(
            self.conn,
            "SELECT identity_id, block_id FROM identities_blocks WHERE identity_id = ANY(%s) ORDER BY block_id",
            [identity_ids],
        )
        return [
            IdentityEntry(
                id=self.ids(row["id"], "identity"),
                identifier_key=row["identifier_key"],
                name=row["name"],
                identity_type=row["identity_type"],
                properties=row["properties"] or [],
                project_id=row["project_id"],
                agent_ids=[
                    self.ids(link["agent_id"], "agent") for link in links if link["identity_id"] == row["id"]
                ],
                block_ids=[
                    file_id
                    for link in block_links
                    if link["identity_id"] == row["id"]
                    and (file_id := self.ids.get(link["block_id"], "block")) is not None
                ],
            )
            for row in rows
        ]


def _unique(rows: list[Row], sort_key: str) -> list[Row]:
    """Rows deduplicated by id (a block or tool shared by several exported agents appears once)."""
    unique = {row["id"]: row for row in rows}
    return sorted(unique.values(), key=lambda row: (row[sort_key] or "", row["id"]))


def vector_to_base64(text: str | None, dim: int | None) -> str | None:
    """pgvector text ``[a,b,...]`` → base64 float32, trimmed to ``dim`` (the 4096 padding dropped)."""
    if text is None:
        return None
    values = [float(v) for v in text.strip("[]").split(",") if v]
    if dim and 0 < dim <= len(values):
        values = values[:dim]
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


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
