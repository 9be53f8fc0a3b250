"""The ``lifeboat`` extras of a complete agent file: what Letta's format has no place for.

Archives and their passages (with embeddings), folder passages, identities, per-agent columns
Letta's ``CreateAgent`` drops, named conversations with their messages, and group state. A mixin
of the exporter in :mod:`lifeboat.letta.agent_file_export`: it reads through the same connection,
inside the same REPEATABLE READ transaction, and numbers ids with the same :class:`FileIds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lifeboat.letta.agent_file import (
    AgentExtra,
    CompleteExtras,
    ConversationEntry,
    ConversationMember,
    GroupState,
    IdentityEntry,
    MessageEntry,
    MessageExtra,
    PassageEntry,
)
from lifeboat.letta.agent_file_entries import FileIds, Row, archive_entry, block_entry, passage_entry


def rows_of(conn: psycopg.Connection, query: str, params: Sequence[Any] = ()) -> list[Row]:
    """``query``'s rows as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


class CompleteExtrasQueries:
    """The complete-mode queries; the exporter provides the attributes below and ``_message``."""

    conn: psycopg.Connection
    ids: FileIds
    agent_rows: list[Row]
    agent_ids: list[str]
    _message_extras: dict[str, MessageExtra]

    def _message(self, row: Row, agent_file_id: str) -> MessageEntry:
        raise NotImplementedError

    def _extras(self, files: list[Row]) -> CompleteExtras:
        extras = CompleteExtras()
        archive_links = rows_of(
            self.conn,
            "SELECT * FROM archives_agents WHERE agent_id = ANY(%s) ORDER BY agent_id, archive_id",
            [self.agent_ids],
        )
        archive_ids = sorted({link["archive_id"] for link in archive_links})
        extras.archives = [
            archive_entry(self.ids, row)
            for row in rows_of(
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
        groups = rows_of(
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
        rows = rows_of(
            self.conn,
            "SELECT * FROM conversations WHERE agent_id = %s AND NOT is_deleted ORDER BY created_at, id",
            [agent["id"]],
        )
        agent_file_id = self.ids(agent["id"], "agent")
        result = []
        for conv in rows:
            messages = rows_of(
                self.conn,
                "SELECT * FROM messages WHERE conversation_id = %s AND NOT is_deleted ORDER BY sequence_id",
                [conv["id"]],
            )
            entries = [self._message(m, agent_file_id) for m in messages]
            members = rows_of(
                self.conn,
                "SELECT message_id, position, in_context FROM conversation_messages"
                " WHERE conversation_id = %s AND NOT is_deleted ORDER BY position, id",
                [conv["id"]],
            )
            isolated = rows_of(
                self.conn,
                "SELECT b.*, '{}'::text[] AS tags FROM blocks_conversations bc JOIN block b ON b.id = bc.block_id"
                " WHERE bc.conversation_id = %s ORDER BY b.label",
                [conv["id"]],
            )
            blocks = [block_entry(self.ids, b) for b in isolated]
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

    def _archival_passages(self, archive_ids: list[str]) -> list[PassageEntry]:
        rows = rows_of(
            self.conn,
            "SELECT id, archive_id, text, embedding::text AS embedding, embedding_config, metadata_, tags, created_at"
            " FROM archival_passages WHERE archive_id = ANY(%s) AND NOT is_deleted ORDER BY archive_id, created_at, id",
            [archive_ids],
        )
        return [
            passage_entry(self.ids, row, archive_id=self.ids(row["archive_id"], "archive")) for row in rows
        ]

    def _source_passages(self, file_ids: list[str]) -> list[PassageEntry]:
        rows = rows_of(
            self.conn,
            "SELECT id, file_id, source_id, file_name, text, embedding::text AS embedding, embedding_config,"
            " metadata_, tags, created_at FROM source_passages WHERE file_id = ANY(%s) AND NOT is_deleted"
            " ORDER BY file_id, created_at, id",
            [file_ids],
        )
        return [
            passage_entry(
                self.ids,
                row,
                file_id=self.ids(row["file_id"], "file"),
                source_id=self.ids(row["source_id"], "source"),
                file_name=row["file_name"],
            )
            for row in rows
        ]

    def _identities(self) -> list[IdentityEntry]:
        links = rows_of(
            self.conn,
            "SELECT identity_id, agent_id FROM identities_agents WHERE agent_id = ANY(%s) ORDER BY identity_id, agent_id",
            [self.agent_ids],
        )
        identity_ids = sorted({link["identity_id"] for link in links})
        rows = rows_of(
            self.conn, "SELECT * FROM identities WHERE id = ANY(%s) ORDER BY created_at, id", [identity_ids]
        )
        block_links = rows_of(
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
