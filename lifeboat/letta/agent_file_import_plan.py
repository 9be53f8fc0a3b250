"""The agent-file import plan and its inputs: what the planner reads and what it returns.

:class:`Target` (facts about the destination database) and :class:`Options` go in; an
:class:`ImportPlan` (ordered :class:`Write` s, id map, warnings, the custom tools it would
install) comes out. Also the pgvector literal of an embedding, which the writer casts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat.letta.agent_config import MAX_EMBEDDING_DIM
from lifeboat.letta.agent_file import ToolEntry
from lifeboat.letta.agent_file_embedding import decode_embedding

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


_ZERO_TAIL = ",0" * MAX_EMBEDDING_DIM


def padded_vector(encoded: str | None) -> Vector | None:
    """base64 float32 → the pgvector literal of the zero-padded 4096-dim column."""
    if encoded is None:
        return None
    values = decode_embedding(encoded)
    head = ",".join(map(repr, values))
    tail = _ZERO_TAIL[: 2 * (MAX_EMBEDDING_DIM - len(values))]
    return Vector("[" + (head + tail if head else tail[1:]) + "]")
