"""Database rows → agent-file entries: one pure function per entity, and the file-id numbering.

Each function maps one row (as ``SELECT *`` returns it) to the entry Letta 0.16.8's exporter
writes for it; ids go through :class:`FileIds`, so an entity keeps one file id wherever it is
referenced. Queries live in :mod:`lifeboat.letta.agent_file_export`.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from lifeboat.letta.agent_file import (
    ArchiveEntry,
    BlockEntry,
    FileAgentEntry,
    FileEntry,
    McpServerEntry,
    PassageEntry,
    SourceEntry,
    ToolEntry,
)

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


def vector_to_base64(text: str | None, dim: int | None) -> str | None:
    """pgvector text ``[a,b,...]`` → base64 float32, trimmed to ``dim`` (the 4096 padding dropped)."""
    if text is None:
        return None
    values = [float(v) for v in text.strip("[]").split(",") if v]
    if dim and 0 < dim <= len(values):
        values = values[:dim]
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def file_agent_entry(ids: FileIds, row: Row, agent_file_id: str) -> FileAgentEntry:
    return FileAgentEntry(
        id=row["id"],
        agent_id=agent_file_id,
        file_id=ids(row["file_id"], "file"),
        source_id=ids(row["source_id"], "source"),
        file_name=row["file_name"],
        is_open=row["is_open"],
        visible_content=row["visible_content"],
        last_accessed_at=row["last_accessed_at"],
        start_line=row["start_line"],
        end_line=row["end_line"],
    )


def block_entry(ids: FileIds, row: Row) -> BlockEntry:
    return BlockEntry(
        id=ids(row["id"], "block"),
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


def tool_entry(ids: FileIds, row: Row) -> ToolEntry:
    return ToolEntry(
        id=ids(row["id"], "tool"),
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


def source_entry(ids: FileIds, row: Row) -> SourceEntry:
    return SourceEntry(
        id=ids(row["id"], "source"),
        name=row["name"],
        description=row["description"],
        instructions=row["instructions"],
        metadata=row["metadata_"],
        embedding_config=row["embedding_config"],
    )


def file_entry(ids: FileIds, row: Row) -> FileEntry:
    return FileEntry(
        id=ids(row["id"], "file"),
        source_id=ids(row["source_id"], "source"),
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


def mcp_server_entry(ids: FileIds, row: Row) -> McpServerEntry:
    stdio = row["stdio_config"]
    if isinstance(stdio, dict):
        stdio = {k: v for k, v in stdio.items() if k != "env"}
    return McpServerEntry(
        id=ids(row["id"], "mcp_server"),
        server_type=row["server_type"],
        server_name=row["server_name"],
        server_url=row["server_url"],
        stdio_config=stdio,
        metadata_=row["metadata_"],
    )


def archive_entry(ids: FileIds, row: Row) -> ArchiveEntry:
    return ArchiveEntry(
        id=ids(row["id"], "archive"),
        name=row["name"],
        description=row["description"],
        vector_db_provider=row["vector_db_provider"] or "NATIVE",
        embedding_config=row["embedding_config"],
        metadata=row["metadata_"],
        created_at=row["created_at"],
    )


def passage_entry(ids: FileIds, row: Row, **refs: Any) -> PassageEntry:
    config = row["embedding_config"] or {}
    return PassageEntry(
        id=ids(row["id"], "passage"),
        text=row["text"],
        embedding=vector_to_base64(row["embedding"], config.get("embedding_dim")),
        embedding_config=row["embedding_config"],
        metadata=row["metadata_"] or {},
        tags=row["tags"],
        created_at=row["created_at"],
        **refs,
    )
