"""Agent-file import, per-agent rows: the agent, its links and secrets, messages, attachments.

Agents get the file's configuration and Letta's creation defaults (``compaction_settings``,
requires-approval tool rules); messages are inserted in file order so ``message_seq_id``
numbers them the same way; ``agents.message_ids`` is rebuilt from ``in_context_message_ids``;
file attachments keep their exported open/closed state.
"""

from __future__ import annotations

import uuid
from typing import Any

from lifeboat.letta import agent_file_defaults as letta_defaults
from lifeboat.letta.agent_file import AgentEntry, MessageEntry
from lifeboat.letta.agent_file_defaults import DEFAULT_TIMEZONE, default_compaction_settings
from lifeboat.letta.agent_file_import_plan import SUBAGENT_ROLE_TAG, Write
from lifeboat.letta.agent_file_import_shared import SharedPlanner
from lifeboat.letta.agent_file_secrets import value_enc
from lifeboat.letta.ids import new_id


class AgentPlanner(SharedPlanner):
    """Plans each agent's rows (after the shared rows it links to)."""

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
