"""What one migrated agent is made of, as plain values (the input of the writer).

The caller (``lifeboat.ops.migrate_rows``) fills these from Letta V1 rows; nothing here knows
where they came from. JSON columns arrive already parsed; timestamps are ISO 8601 strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SourceMessage:
    """One Letta V1 message row (the columns the transcript needs)."""

    id: str
    role: str  # system, user, assistant, tool, function, approval, summary
    created_at: str
    content: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_returns: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    approve: bool | None = None
    denial_reason: str | None = None
    name: str | None = None
    model: str | None = None
    otid: str | None = None
    text: str | None = None  # the legacy ``text`` column, used when ``content`` is empty


@dataclass
class SourceConversation:
    """A conversation: ``id`` None is the agent's default conversation."""

    id: str | None
    messages: list[SourceMessage]  # the whole history, oldest first
    in_context_ids: list[str]  # the context window, oldest first (system message included or not)
    created_at: str
    summary: str | None = None
    last_message_at: str | None = None


@dataclass
class SourceBlock:
    id: str
    label: str
    value: str
    description: str | None = None
    limit: int | None = None
    read_only: bool = False
    shared_with: list[str] = field(default_factory=list)  # names of the other agents using it
    history: list[dict[str, Any]] = field(default_factory=list)  # block_history rows, oldest first


@dataclass
class SourcePassage:
    id: str
    text: str
    created_at: str
    tags: list[str] = field(default_factory=list)
    archive: str = ""


@dataclass
class SourceFile:
    id: str
    file_name: str
    folder: str
    text: str | None  # the parsed text (file_contents); None when Letta had none
    is_open: bool = False
    visible_lines: str | None = None  # "start-end" when the agent had a window open


@dataclass
class SourceTool:
    id: str
    name: str
    tool_type: str
    description: str | None = None
    source_code: str | None = None
    source_type: str | None = None
    json_schema: dict[str, Any] | None = None
    pip_requirements: list[Any] = field(default_factory=list)


@dataclass
class SourceAgent:
    """One Letta V1 agent, everything the migration carries or reports."""

    id: str
    name: str
    created_at: str
    updated_at: str
    system: str
    description: str | None = None
    agent_type: str | None = None
    tags: list[str] = field(default_factory=list)
    llm_config: dict[str, Any] = field(default_factory=dict)
    hidden: bool = False
    conversations: list[SourceConversation] = field(default_factory=list)
    blocks: list[SourceBlock] = field(default_factory=list)  # in-context (core) memory
    passages: list[SourcePassage] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)
    tools: list[SourceTool] = field(default_factory=list)
    #: Things with no place in Letta Code, counted for the report: kind -> (count, reason).
    left_out: dict[str, tuple[int, str]] = field(default_factory=dict)
