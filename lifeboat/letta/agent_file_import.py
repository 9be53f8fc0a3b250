"""An agent file → the rows Letta 0.16.8's importer would create, as a plan of writes.

:func:`plan_import` is pure: it takes a validated :class:`AgentFile` and a :class:`Target`
(facts read from the destination database) and returns an :class:`ImportPlan` — ordered
inserts/updates plus the id map and warnings. Applying it is the caller's job (one transaction,
:mod:`lifeboat.ops.import_af`).

The rows follow ``AgentSerializationManager.import_file`` and the managers it calls
(docs/LETTA.md §7): new ids everywhere; tools matched by name in the organization (kept unless
``overwrite_tools``, as ``override_existing_tools=False``); blocks always new; a folder whose
name is taken gets ``_<8 hex>``; agents created with the file's configuration, tags, secrets
(encrypted like Letta), tool/block/folder links and Letta's creation defaults
(``compaction_settings``, requires-approval tool rules); messages inserted in file order so
``message_seq_id`` numbers them the same way; ``agents.message_ids`` rebuilt from
``in_context_message_ids``; groups with their members and shared blocks.

Where Letta's importer loses information, lifeboat keeps it (documented in docs/AGENT_FILES.md):
file attachments keep their exported open/closed state, files without embeddings are marked as
such instead of being re-embedded, MCP tool metadata points at the imported server, and the
``lifeboat`` extras of a complete export are restored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat.letta import agent_file_defaults as letta_defaults
from lifeboat.letta.agent_config import MAX_EMBEDDING_DIM
from lifeboat.letta.agent_file import (
    AgentEntry,
    AgentFile,
    BlockEntry,
    CompleteExtras,
    ConversationEntry,
    FileEntry,
    GroupEntry,
    GroupState,
    MessageEntry,
    PassageEntry,
    ToolEntry,
)
from lifeboat.letta.agent_file_defaults import (
    DEFAULT_TIMEZONE,
    SLEEPTIME_TURNS_COUNTER_START,
    default_compaction_settings,
)
from lifeboat.letta.agent_file_secrets import value_enc
from lifeboat.letta.agent_file_validate import decode_embedding
from lifeboat.letta.ids import new_id

SUBAGENT_ROLE_TAG = "role:subagent"  # letta/constants.py: such agents are created hidden
NO_EMBEDDINGS_MESSAGE = (
    "imported from an agent file without embeddings (lifeboat): re-upload the file to make it searchable"
)


class Vector(str):
    """A pgvector literal ``[v1,v2,...]``; the writer casts it with ``::vector``."""


@dataclass
class Write:
    table: str
    values: dict[str, Any]
    update_id: str | None = None  # None = INSERT, else UPDATE ... WHERE id = update_id


@dataclass
class ExistingTool:
    id: str
    tool_type: str | None
    source_code: str | None
    json_schema: Any


@dataclass
class Target:
    """What the importer needs to know about the destination database."""

    organization_id: str
    user_id: str | None
    tools: dict[str, ExistingTool] = field(default_factory=dict)  # by name, in the organization
    source_names: set[str] = field(default_factory=set)
    mcp_servers: dict[str, str] = field(default_factory=dict)  # server name -> id
    identities: dict[tuple[str, str | None], str] = field(default_factory=dict)  # (key, project) -> id
    encryption_key: str | None = None


@dataclass
class Options:
    name: str | None = None  # new name for the first agent
    secrets: dict[str, str] = field(default_factory=dict)
    overwrite_tools: bool = False
    # New (or, with overwrite_tools, replaced) tools that carry code Letta runs on its host
    # (source code, pip/npm requirements) are refused unless the operator allows them.
    allow_custom_tools: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class CustomTool:
    """A tool the import would create (or overwrite) with code that Letta runs on its host."""

    name: str
    action: str  # "create" or "overwrite"
    source_lines: int  # lines of source code (0: none)
    pip_requirements: tuple[str, ...] = ()
    npm_requirements: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{self.source_lines} line(s) of source code"] if self.source_lines else []
        if self.pip_requirements:
            parts.append(f"pip: {', '.join(self.pip_requirements)}")
        if self.npm_requirements:
            parts.append(f"npm: {', '.join(self.npm_requirements)}")
        return f"tool {self.name!r} ({self.action}): {'; '.join(parts)}"


def _requirement_names(requirements: list[dict[str, Any]] | None) -> tuple[str, ...]:
    names = []
    for requirement in requirements or []:
        name = str(requirement.get("name", "?"))
        version = requirement.get("version")
        names.append(f"{name}=={version}" if version else name)
    return tuple(names)


def custom_tool(tool: ToolEntry, action: str) -> CustomTool | None:
    """The tool as a :class:`CustomTool` when it carries code (source, pip or npm requirements)."""
    source = tool.source_code or ""
    pip = _requirement_names(tool.pip_requirements)
    npm = _requirement_names(tool.npm_requirements)
    if not source.strip() and not pip and not npm:
        return None
    return CustomTool(tool.name, action, len(source.splitlines()) if source.strip() else 0, pip, npm)


@dataclass
class ImportPlan:
    writes: list[Write] = field(default_factory=list)
    custom_tools: list[CustomTool] = field(default_factory=list)  # code the import installs
    id_map: dict[str, str] = field(default_factory=dict)  # file id -> database id
    agent_ids: list[str] = field(default_factory=list)  # new database ids, file order
    reused: dict[str, str] = field(default_factory=dict)  # file id -> existing database id
    warnings: list[str] = field(default_factory=list)

    def insert(self, table: str, **values: Any) -> None:
        self.writes.append(Write(table, values))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for write in self.writes:
            key = write.table if write.update_id is None else f"{write.table} (updated)"
            counts[key] = counts.get(key, 0) + 1
        return counts


class _Planner:
    def __init__(self, doc: AgentFile, target: Target, options: Options) -> None:
        self.doc = doc
        self.target = target
        self.options = options
        self.plan = ImportPlan()
        self.extras = doc.lifeboat or CompleteExtras(complete=False)
        # Letta's importer re-parses JSON objects through its pydantic models (adding default
        # fields); a complete lifeboat export is restored verbatim instead: it is a backup.
        self.verbatim = self.extras.complete
        self.org = target.organization_id
        self.user = target.user_id
        self.block_labels: dict[str, str] = {}  # db block id -> label
        self.tool_names: dict[str, str] = {}  # db tool id -> name
        self.tool_approval: dict[str, bool] = {}  # db tool id -> default_requires_approval
        self.blocks_agents: set[tuple[str, str]] = set()

    def _normal(self, normalize: Callable[[Any], Any], value: Any) -> Any:
        return value if self.verbatim else normalize(value)

    def _map(self, file_id: str, prefix: str) -> str:
        db_id = new_id(prefix)
        self.plan.id_map[file_id] = db_id
        return db_id

    def _audit(self) -> dict[str, Any]:
        return {"organization_id": self.org, "_created_by_id": self.user, "_last_updated_by_id": self.user}

    def run(self) -> ImportPlan:
        self._mcp_servers()
        for tool in self.doc.tools:
            self._tool(tool)
        for block in [*self.doc.blocks, *self.extras.isolated_blocks]:
            self._block(block)
        self._sources()
        has_passages = {p.file_id for p in self.extras.source_passages}
        for file in self.doc.files:
            self._file(file, file.id in has_passages)
        self._identities_rows()
        for group in self.doc.groups:  # ids first: messages name their group
            self._map(group.id, "group")
        for index, agent in enumerate(self.doc.agents):
            self._agent(agent, index)
        for agent in self.doc.agents:
            self._messages(agent)
            self._files_agents(agent)
        self._archives()
        self._source_passages()
        for group in self.doc.groups:
            self._group(group)
        self._identity_links()
        for agent in self.doc.agents:
            self._conversations(agent)
        if self.doc.skills:
            self.plan.warnings.append(f"{len(self.doc.skills)} skill(s) ignored: Letta does not store skills")
        return self.plan

    # ---- MCP servers and tools ----

    def _mcp_servers(self) -> None:
        for server in self.doc.mcp_servers:
            existing = self.target.mcp_servers.get(server.server_name)
            if existing:
                self.plan.id_map[server.id] = existing
                self.plan.reused[server.id] = existing
                self.plan.warnings.append(
                    f"MCP server {server.server_name!r} exists: kept (reconfigure auth if needed)"
                )
                continue
            db_id = self._map(server.id, "mcp_server")
            self.target.mcp_servers[server.server_name] = db_id
            self.plan.insert(
                "mcp_server",
                id=db_id,
                server_name=server.server_name,
                server_type=server.server_type,
                server_url=server.server_url,
                stdio_config=server.stdio_config,
                metadata_=server.metadata_,
                **self._audit(),
            )
            self.plan.warnings.append(
                f"MCP server {server.server_name!r} created without credentials: configure its auth"
            )

    def _tool_metadata(self, tool: ToolEntry) -> dict[str, Any]:
        """Point MCP tools at the imported (or existing) server of the same name."""
        metadata = dict(tool.metadata_ or {})
        mcp = metadata.get("mcp")
        if isinstance(mcp, dict) and mcp.get("server_name") in self.target.mcp_servers:
            metadata["mcp"] = {**mcp, "server_id": self.target.mcp_servers[mcp["server_name"]]}
        return metadata

    def _tool_values(self, tool: ToolEntry) -> dict[str, Any]:
        description = tool.description
        if description is None and isinstance(tool.json_schema, dict):  # bulk_upsert_tools_async
            from_schema = tool.json_schema.get("description")
            description = from_schema if isinstance(from_schema, str) else None
        return {
            "name": tool.name,
            "tool_type": tool.tool_type,
            "description": description,
            "source_type": tool.source_type or "json",  # the ORM column default (ToolSourceType.json)
            "source_code": tool.source_code,
            "json_schema": tool.json_schema,
            "args_json_schema": tool.args_json_schema,
            "tags": list(tool.tags),
            "return_char_limit": tool.return_char_limit,
            "pip_requirements": tool.pip_requirements,
            "npm_requirements": tool.npm_requirements,
            "default_requires_approval": tool.default_requires_approval,
            "enable_parallel_execution": tool.enable_parallel_execution,
            "metadata_": self._tool_metadata(tool),
            "project_id": tool.project_id,
        }

    def _note_code(self, tool: ToolEntry, action: str) -> None:
        found = custom_tool(tool, action)
        if found is not None:
            self.plan.custom_tools.append(found)

    def _tool(self, tool: ToolEntry) -> None:
        existing = self.target.tools.get(tool.name)
        if existing is None:
            self._note_code(tool, "create")
            db_id = self._map(tool.id, "tool")
            self.plan.insert("tools", id=db_id, **self._tool_values(tool), **self._audit())
            self.target.tools[tool.name] = ExistingTool(
                db_id, tool.tool_type, tool.source_code, tool.json_schema
            )
        else:
            db_id = existing.id
            self.plan.id_map[tool.id] = db_id
            self.plan.reused[tool.id] = db_id
            same = existing.source_code == tool.source_code and existing.json_schema == tool.json_schema
            if self.options.overwrite_tools and not same:
                self._note_code(tool, "overwrite")
                values = {
                    **self._tool_values(tool),
                    "_last_updated_by_id": self.user,
                    "updated_at": self.options.now,
                }
                self.plan.writes.append(Write("tools", values, update_id=db_id))
                self.plan.warnings.append(f"tool {tool.name!r} overwritten with the file's definition")
            elif not same:
                self.plan.warnings.append(
                    f"tool {tool.name!r} exists with a different definition: kept the existing one"
                    " (--overwrite-tools replaces it)"
                )
        self.tool_names[db_id] = tool.name
        self.tool_approval[db_id] = bool(tool.default_requires_approval)

    # ---- blocks, folders, files ----

    def _block(self, block: BlockEntry) -> None:
        db_id = self._map(block.id, "block")
        self.block_labels[db_id] = block.label
        values = {
            "id": db_id,
            "label": block.label,
            "value": block.value,
            "limit": block.limit,
            "description": block.description,
            "read_only": block.read_only,
            "hidden": block.hidden,
            "is_template": block.is_template,
            "template_name": block.template_name,
            "preserve_on_migration": block.preserve_on_migration,
            "metadata_": block.metadata if block.metadata is not None else {},
            "project_id": block.project_id,
            "template_id": block.template_id,
            "base_template_id": block.base_template_id,
            "deployment_id": block.deployment_id,
            "entity_id": block.entity_id,
        }
        # Letta dumps the block with exclude_none: absent columns take their defaults.
        self.plan.insert("block", **{k: v for k, v in values.items() if v is not None}, **self._audit())
        for tag in dict.fromkeys(block.tags or []):
            self.plan.insert("blocks_tags", block_id=db_id, tag=tag, organization_id=self.org)

    def _sources(self) -> None:
        for source in self.doc.sources:
            name = source.name
            if name in self.target.source_names:
                name = f"{name}_{uuid.uuid4().hex[:8]}"
                self.plan.warnings.append(f"folder {source.name!r} exists: imported as {name!r}")
            self.target.source_names.add(name)
            db_id = self._map(source.id, "source")
            self.plan.insert(
                "sources",
                id=db_id,
                name=name,
                description=source.description,
                instructions=source.instructions,
                metadata_=source.metadata,
                embedding_config=self._normal(letta_defaults.embedding_config, source.embedding_config),
                vector_db_provider="NATIVE",
                **self._audit(),
            )

    def _file(self, file: FileEntry, has_passages: bool) -> None:
        db_id = self._map(file.id, "file")
        status, error, total, embedded = (
            (file.processing_status, file.error_message, file.total_chunks, file.chunks_embedded)
            if has_passages
            else ("error", NO_EMBEDDINGS_MESSAGE, None, None)
        )
        self.plan.insert(
            "files",
            id=db_id,
            source_id=self.plan.id_map[file.source_id],
            file_name=file.file_name,
            original_file_name=file.original_file_name,
            file_path=file.file_path,
            file_type=file.file_type,
            file_size=file.file_size,
            file_creation_date=file.file_creation_date,
            file_last_modified_date=file.file_last_modified_date,
            processing_status=status,
            error_message=error,
            total_chunks=total,
            chunks_embedded=embedded,
            **self._audit(),
        )
        if file.content is not None:
            self.plan.insert(
                "file_contents",
                id=new_id("file_content"),
                file_id=db_id,
                text=file.content,
                _created_by_id=self.user,
                _last_updated_by_id=self.user,
            )

    # ---- agents ----

    def _agent(self, agent: AgentEntry, index: int) -> None:
        db_id = self._map(agent.id, "agent")
        self.plan.agent_ids.append(db_id)
        tool_ids = [self.plan.id_map[t] for t in agent.tool_ids or []]
        values = self._agent_values(agent, index, tool_ids)
        extra = self.extras.agents.get(agent.id)
        if extra is not None:  # state Letta's export drops, from a complete file
            values.update(
                enable_sleeptime=extra.enable_sleeptime,
                hidden=extra.hidden,
                last_run_completion=extra.last_run_completion,
                last_run_duration_ms=extra.last_run_duration_ms,
                last_stop_reason=extra.last_stop_reason,
                deployment_id=extra.deployment_id,
                entity_id=extra.entity_id,
            )
            for raw in ("max_files_open", "per_file_view_window_char_limit", "timezone"):
                if raw in extra.model_fields_set:
                    values[raw] = getattr(extra, raw)
            if extra.created_at is not None:
                values["created_at"] = extra.created_at
        self.plan.insert("agents", id=db_id, **values)
        self._agent_links(agent, db_id, tool_ids)

    def _agent_values(self, agent: AgentEntry, index: int, tool_ids: list[str]) -> dict[str, Any]:
        """The agents row as ``create_agent_async`` fills it (minus id and message_ids)."""
        llm_config = dict(agent.llm_config or {})
        compaction = agent.compaction_settings
        if compaction is None and not self.verbatim:
            compaction = default_compaction_settings(llm_config)
        return {
            "name": self.options.name if index == 0 and self.options.name else agent.name,
            "description": agent.description,
            "system": agent.system,
            "agent_type": agent.agent_type,
            "message_ids": [],  # set once the messages exist
            "response_format": agent.response_format,
            "metadata_": agent.metadata,
            "llm_config": llm_config,
            "embedding_config": self._normal(letta_defaults.embedding_config, agent.embedding_config),
            "compaction_settings": compaction,
            "tool_rules": agent.tool_rules or [] if self.verbatim else self._tool_rules(agent, tool_ids),
            "message_buffer_autoclear": agent.message_buffer_autoclear
            or agent.agent_type == "workflow_agent",
            "enable_sleeptime": agent.enable_sleeptime,
            "timezone": agent.timezone or DEFAULT_TIMEZONE,
            "max_files_open": agent.max_files_open,
            "per_file_view_window_char_limit": agent.per_file_view_window_char_limit,
            "hidden": True if SUBAGENT_ROLE_TAG in (agent.tags or []) else agent.hidden,
            "project_id": agent.project_id,
            "template_id": agent.template_id,
            "base_template_id": agent.base_template_id,
            **self._audit(),
        }

    def _tool_rules(self, agent: AgentEntry, tool_ids: list[str]) -> list[dict[str, Any]]:
        """The file's rules plus Letta's requires-approval rules, deduplicated like Letta's column type."""
        rules = list(agent.tool_rules or [])
        for tool_id in tool_ids:
            if self.tool_approval.get(tool_id):
                rules.append(
                    {
                        "tool_name": self.tool_names[tool_id],
                        "type": "requires_approval",
                        "prompt_template": None,
                    }
                )
        unique: dict[str, dict[str, Any]] = {}
        for rule in rules:
            unique.setdefault(repr(sorted(rule.items())), rule)
        return list(unique.values())

    def _agent_links(self, agent: AgentEntry, db_id: str, tool_ids: list[str]) -> None:
        for tool_id in dict.fromkeys(tool_ids):
            self.plan.insert("tools_agents", agent_id=db_id, tool_id=tool_id)
        for block_file_id in agent.block_ids or []:
            self._attach_block(db_id, self.plan.id_map[block_file_id])
        folders = agent.folder_ids or agent.source_ids or []
        for source_file_id in dict.fromkeys(folders):
            self.plan.insert("sources_agents", agent_id=db_id, source_id=self.plan.id_map[source_file_id])
        for tag in dict.fromkeys(agent.tags or []):
            self.plan.insert("agents_tags", agent_id=db_id, tag=tag)
        secrets = agent.secrets or agent.tool_exec_environment_variables or {}
        for key in secrets:
            value = self.options.secrets.get(key, "")
            self.plan.insert(
                "agent_environment_variables",
                id=new_id("agent-env"),
                agent_id=db_id,
                key=key,
                value="",
                value_enc=value_enc(value, self.target.encryption_key),
                organization_id=self.org,  # a core INSERT in create_agent_async: no audit columns
            )
        missing = [k for k in secrets if k not in self.options.secrets]
        if missing:
            self.plan.warnings.append(
                f"agent {agent.name!r}: secrets without a value: {', '.join(missing[:10])}"
            )

    def _attach_block(self, agent_db_id: str, block_db_id: str) -> None:
        if (agent_db_id, block_db_id) in self.blocks_agents:
            return
        self.blocks_agents.add((agent_db_id, block_db_id))
        self.plan.insert(
            "blocks_agents",
            agent_id=agent_db_id,
            block_id=block_db_id,
            block_label=self.block_labels[block_db_id],
        )

    # ---- messages ----

    def _message_row(
        self, message: MessageEntry, agent_db_id: str, conversation_id: str | None
    ) -> dict[str, Any]:
        db_id = self._map(message.id, "message")
        content = message.content
        if isinstance(content, str):  # MessageCreate.model_dump(to_orm=True)
            content = [{"type": "text", "text": content, "signature": None}]
        values: dict[str, Any] = {
            "id": db_id,
            "role": message.role,
            "content": self._normal(letta_defaults.content_parts, content or []),
            "model": message.model,
            "name": message.name,
            "tool_calls": message.tool_calls or [],
            "tool_call_id": message.tool_call_id,
            "otid": message.otid if self.verbatim else message.otid or str(uuid.uuid4()),  # MessageCreate
            "tool_returns": self._normal(letta_defaults.tool_returns, message.tool_returns or []),
            "group_id": self.plan.id_map.get(message.group_id, message.group_id)
            if message.group_id
            else None,
            "sender_id": message.sender_id,
            "batch_item_id": message.batch_item_id,
            "conversation_id": conversation_id,
            "approval_request_id": message.approval_request_id,
            "approve": message.approve,
            "denial_reason": message.denial_reason,
            "approvals": self._normal(letta_defaults.approvals, message.approvals or []),
            "agent_id": agent_db_id,
            "created_at": message.created_at or self.options.now,
            **self._audit(),
        }
        extra = self.extras.messages.get(message.id)
        if extra is not None:
            values.update(text=extra.text, is_err=extra.is_err)
            if extra.updated_at is not None:
                values["updated_at"] = extra.updated_at
        return values

    def _messages(self, agent: AgentEntry) -> None:
        agent_db_id = self.plan.id_map[agent.id]
        for message in agent.messages:
            self.plan.insert("messages", **self._message_row(message, agent_db_id, None))
        in_context = [self.plan.id_map[m] for m in agent.in_context_message_ids]
        if not in_context:
            system_id = new_id("message")
            self.plan.insert(
                "messages",
                id=system_id,
                role="system",
                content=[{"type": "text", "text": agent.system or "", "signature": None}],
                model=(agent.llm_config or {}).get("model"),
                tool_calls=[],
                tool_returns=[],
                approvals=[],
                otid=str(uuid.uuid4()),
                agent_id=agent_db_id,
                created_at=self.options.now,
                **self._audit(),
            )
            in_context = [system_id]
            self.plan.warnings.append(
                f"agent {agent.name!r}: no in-context messages in the file; started from its system prompt"
            )
        self.plan.writes.append(Write("agents", {"message_ids": in_context}, update_id=agent_db_id))

    def _files_agents(self, agent: AgentEntry) -> None:
        """Attachments keep their exported state (Letta's importer re-opens files LRU-first)."""
        agent_db_id = self.plan.id_map[agent.id]
        open_links = sorted(
            (link for link in agent.files_agents if link.is_open),
            key=lambda link: link.last_accessed_at or self.options.now,
            reverse=True,
        )
        keep_open = {id(link) for link in open_links[: agent.max_files_open or len(open_links)]}
        for link in agent.files_agents:
            is_open = id(link) in keep_open
            self.plan.insert(
                "files_agents",
                id=new_id("file_agent"),
                file_id=self.plan.id_map[link.file_id],
                agent_id=agent_db_id,
                source_id=self.plan.id_map[link.source_id],
                file_name=link.file_name,
                is_open=is_open,
                visible_content=link.visible_content if is_open else None,
                last_accessed_at=link.last_accessed_at or self.options.now,
                start_line=link.start_line,
                end_line=link.end_line,
                organization_id=self.org,  # attach_files_bulk leaves the audit columns empty
            )

    # ---- groups ----

    def _group(self, group: GroupEntry) -> None:
        db_id = self.plan.id_map[group.id]
        config = group.manager_config
        manager_type = config["manager_type"]
        manager = config.get("manager_agent_id")
        agent_ids = [self.plan.id_map[a] for a in group.agent_ids]
        values: dict[str, Any] = {
            "id": db_id,
            "description": group.description,
            "manager_type": manager_type,
            "manager_agent_id": self.plan.id_map[manager] if manager else None,
            "agent_ids": agent_ids,
            **self._audit(),
        }
        if manager_type in ("round_robin", "dynamic"):
            values["max_turns"] = config.get("max_turns")
        if manager_type == "dynamic":
            values["termination_token"] = config.get("termination_token", "DONE!")
        if manager_type == "sleeptime":
            frequency = config.get("sleeptime_agent_frequency")
            values["sleeptime_agent_frequency"] = frequency
            values["turns_counter"] = SLEEPTIME_TURNS_COUNTER_START if frequency else None
        if manager_type == "voice_sleeptime":
            values["max_message_buffer_length"] = config.get("max_message_buffer_length")
            values["min_message_buffer_length"] = config.get("min_message_buffer_length")
        state = self._group_state(group.id)
        if state is not None:
            values["turns_counter"] = state.turns_counter
            last = state.last_processed_message_id
            values["last_processed_message_id"] = self.plan.id_map.get(last) if last else None
        self.plan.insert("groups", **values)
        for agent_id in dict.fromkeys(agent_ids):
            self.plan.insert("groups_agents", group_id=db_id, agent_id=agent_id)
        self._shared_blocks(group, db_id, agent_ids)

    def _group_state(self, group_file_id: str) -> GroupState | None:
        for extra in self.extras.agents.values():
            if group_file_id in extra.group_state:
                return extra.group_state[group_file_id]
        return None

    def _shared_blocks(self, group: GroupEntry, db_id: str, agent_ids: list[str]) -> None:
        manager = group.manager_config.get("manager_agent_id")
        holders = agent_ids + ([self.plan.id_map[manager]] if manager else [])
        for block_file_id in group.shared_block_ids:
            block_db_id = self.plan.id_map.get(block_file_id)
            if block_db_id is None or not block_file_id.startswith("block-"):
                self.plan.warnings.append(
                    f"group {group.id}: shared block {block_file_id[:60]!r} is not in the file (Letta exports"
                    " database ids here); not linked"
                )
                continue
            self.plan.insert("groups_blocks", group_id=db_id, block_id=block_db_id)
            for agent_id in holders:
                self._attach_block(agent_id, block_db_id)

    # ---- complete extras ----

    def _archives(self) -> None:
        for archive in self.extras.archives:
            db_id = self._map(archive.id, "archive")
            values: dict[str, Any] = {
                "id": db_id,
                "name": archive.name,
                "description": archive.description,
                "vector_db_provider": archive.vector_db_provider,
                "embedding_config": self._normal(letta_defaults.embedding_config, archive.embedding_config),
                "metadata_": archive.metadata,
                **self._audit(),
            }
            if archive.created_at is not None:
                values["created_at"] = archive.created_at
            self.plan.insert("archives", **values)
        for agent_file_id, extra in self.extras.agents.items():
            for archive_file_id in extra.archive_ids:
                self.plan.insert(
                    "archives_agents",
                    agent_id=self.plan.id_map[agent_file_id],
                    archive_id=self.plan.id_map[archive_file_id],
                    is_owner=archive_file_id in extra.owned_archive_ids,
                )
        for passage in self.extras.passages:
            self._passage("archival_passages", passage, archive_id=self.plan.id_map[passage.archive_id or ""])

    def _source_passages(self) -> None:
        for passage in self.extras.source_passages:
            self._passage(
                "source_passages",
                passage,
                file_id=self.plan.id_map[passage.file_id or ""],
                source_id=self.plan.id_map[passage.source_id or ""],
                file_name=passage.file_name,
            )

    def _passage(self, table: str, passage: PassageEntry, **refs: Any) -> None:
        db_id = self._map(passage.id, "passage")
        values: dict[str, Any] = {
            "id": db_id,
            "text": passage.text,
            "embedding": padded_vector(passage.embedding),
            "embedding_config": self._normal(letta_defaults.embedding_config, passage.embedding_config),
            "metadata_": passage.metadata,
            "tags": passage.tags,
            **refs,
            **self._audit(),
        }
        if passage.created_at is not None:
            values["created_at"] = passage.created_at
        self.plan.insert(table, **values)
        if table == "archival_passages":
            for tag in dict.fromkeys(passage.tags or []):
                self.plan.insert(
                    "passage_tags",
                    id=new_id("passage-tag"),
                    tag=tag,
                    passage_id=db_id,
                    archive_id=refs["archive_id"],
                    organization_id=self.org,
                    _created_by_id=self.user,
                    _last_updated_by_id=self.user,
                )

    def _identities_rows(self) -> None:
        for identity in self.extras.identities:
            existing = self.target.identities.get((identity.identifier_key, identity.project_id))
            if existing:
                self.plan.id_map[identity.id] = existing
                self.plan.reused[identity.id] = existing
                continue
            db_id = self._map(identity.id, "identity")
            self.plan.insert(
                "identities",
                id=db_id,
                identifier_key=identity.identifier_key,
                name=identity.name,
                identity_type=identity.identity_type,
                properties=identity.properties,
                project_id=identity.project_id,
                **self._audit(),
            )

    def _identity_links(self) -> None:
        for identity in self.extras.identities:
            identity_db_id = self.plan.id_map[identity.id]
            for agent_file_id in dict.fromkeys(identity.agent_ids):
                self.plan.insert(
                    "identities_agents", identity_id=identity_db_id, agent_id=self.plan.id_map[agent_file_id]
                )
            for block_file_id in dict.fromkeys(identity.block_ids):
                self.plan.insert(
                    "identities_blocks", identity_id=identity_db_id, block_id=self.plan.id_map[block_file_id]
                )

    def _conversations(self, agent: AgentEntry) -> None:
        extra = self.extras.agents.get(agent.id)
        if extra is None:
            return
        agent_db_id = self.plan.id_map[agent.id]
        for conversation in extra.conversations:
            self._conversation(conversation, agent_db_id)

    def _conversation(self, conversation: ConversationEntry, agent_db_id: str) -> None:
        db_id = self._map(conversation.id, "conv")
        values: dict[str, Any] = {
            "id": db_id,
            "agent_id": agent_db_id,
            "summary": conversation.summary,
            "model": conversation.model,
            "model_settings": conversation.model_settings,
            "last_message_at": conversation.last_message_at,
            **self._audit(),
        }
        if conversation.created_at is not None:
            values["created_at"] = conversation.created_at
        self.plan.insert("conversations", **values)
        for message in conversation.messages:
            self.plan.insert("messages", **self._message_row(message, agent_db_id, db_id))
        for member in conversation.members:
            self.plan.insert(
                "conversation_messages",
                id=new_id("conv_msg"),
                conversation_id=db_id,
                agent_id=agent_db_id,
                message_id=self.plan.id_map[member.message_id],
                position=member.position,
                in_context=member.in_context,
                organization_id=self.org,
                _created_by_id=self.user,
                _last_updated_by_id=self.user,
            )
        for block_file_id in conversation.isolated_block_ids:
            block_db_id = self.plan.id_map[block_file_id]
            self.plan.insert(
                "blocks_conversations",
                conversation_id=db_id,
                block_id=block_db_id,
                block_label=self.block_labels[block_db_id],
            )


_ZERO_TAIL = ",0" * MAX_EMBEDDING_DIM


def padded_vector(encoded: str | None) -> Vector | None:
    """base64 float32 → the pgvector literal of the zero-padded 4096-dim column."""
    if encoded is None:
        return None
    values = decode_embedding(encoded)
    head = ",".join(map(repr, values))
    tail = _ZERO_TAIL[: 2 * (MAX_EMBEDDING_DIM - len(values))]
    return Vector("[" + (head + tail if head else tail[1:]) + "]")


def plan_import(doc: AgentFile, target: Target, options: Options | None = None) -> ImportPlan:
    """The ordered writes that import ``doc`` into the database described by ``target``."""
    return _Planner(doc, target, options or Options()).run()
