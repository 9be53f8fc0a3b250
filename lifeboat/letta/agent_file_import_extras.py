"""Agent-file import, the rows around agents: groups, archives, passages, identities, conversations.

Groups come from the standard file; the rest from the ``lifeboat`` extras of a complete
export (docs/AGENT_FILES.md), which restore what Letta's importer would lose.
"""

from __future__ import annotations

from typing import Any

from lifeboat.letta import agent_file_defaults as letta_defaults
from lifeboat.letta.agent_file import AgentEntry, ConversationEntry, GroupEntry, GroupState, PassageEntry
from lifeboat.letta.agent_file_defaults import SLEEPTIME_TURNS_COUNTER_START
from lifeboat.letta.agent_file_import_agents import AgentPlanner
from lifeboat.letta.agent_file_import_plan import padded_vector
from lifeboat.letta.ids import new_id


class ExtrasPlanner(AgentPlanner):
    """Plans groups and the complete-export extras (after the agents they refer to)."""

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
