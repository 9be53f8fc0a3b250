"""Agent-file import, organization-level rows: MCP servers, tools, blocks, folders and files.

Tools are matched by name in the organization (kept unless ``overwrite_tools``); blocks are
always new; a folder whose name is taken gets ``_<8 hex>``; files without embeddings are
marked as such instead of being re-embedded.
"""

from __future__ import annotations

import uuid
from typing import Any

from lifeboat.letta import agent_file_defaults as letta_defaults
from lifeboat.letta.agent_file import BlockEntry, FileEntry, ToolEntry
from lifeboat.letta.agent_file_import_context import PlanContext
from lifeboat.letta.agent_file_import_plan import NO_EMBEDDINGS_MESSAGE, ExistingTool, Write, custom_tool
from lifeboat.letta.ids import new_id


class SharedPlanner(PlanContext):
    """Plans the rows agents link to (they are written before the agents)."""

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
