"""The values Letta 0.16.8 accepts in its enum-like ``varchar`` columns (docs/LETTA.md §3, §5).

Letta stores these as plain strings and parses them into Python enums when it loads a row, so a
value outside the vocabulary makes the row unloadable (a 500 on every listing that meets it).
Extracted from the Letta 0.16.8 source (``letta.schemas.enums``, ``letta_stop_reason``,
``group.ManagerType``, ``identity.IdentityType``, ``orm.mcp_oauth``); a test re-reads them from
the installed server and compares. Columns that are PostgreSQL enum types (``steps.status``,
``sandbox_configs.type``, ``*.vector_db_provider``) are enforced by the database itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

AgentType = Literal[
    "memgpt_agent",
    "memgpt_v2_agent",
    "letta_v1_agent",
    "react_agent",
    "workflow_agent",
    "split_thread_agent",
    "sleeptime_agent",
    "voice_convo_agent",
    "voice_sleeptime_agent",
]
AGENT_TYPES: tuple[str, ...] = get_args(AgentType)
STOP_REASONS = (
    "end_turn",
    "error",
    "llm_api_error",
    "invalid_llm_response",
    "invalid_tool_call",
    "max_steps",
    "max_tokens_exceeded",
    "no_tool_call",
    "tool_rule",
    "cancelled",
    "insufficient_credits",
    "requires_approval",
    "context_window_overflow_in_system_prompt",
)
MANAGER_TYPES = ("round_robin", "supervisor", "dynamic", "sleeptime", "voice_sleeptime", "swarm")
IDENTITY_TYPES = ("org", "user", "other")
ToolType = Literal[
    "custom",
    "letta_core",
    "letta_memory_core",
    "letta_multi_agent_core",
    "letta_sleeptime_core",
    "letta_voice_sleeptime_core",
    "letta_builtin",
    "letta_files_core",
    "external_langchain",
    "external_composio",
    "external_mcp",
]
TOOL_TYPES: tuple[str, ...] = get_args(ToolType)
TOOL_SOURCE_TYPES = ("python", "typescript", "json")
MCP_SERVER_TYPES = ("sse", "stdio", "streamable_http")
PROVIDER_CATEGORIES = ("base", "byok")
JOB_STATUSES = ("created", "running", "completed", "failed", "pending", "cancelled", "expired")
JOB_TYPES = ("job", "run", "batch")
RUN_STATUSES = ("created", "running", "completed", "failed", "cancelled")
BATCH_STEP_STATUSES = ("paused", "resumed", "completed")
FILE_STATUSES = ("pending", "parsing", "embedding", "completed", "error")
ACTOR_TYPES = ("letta_user", "letta_agent", "letta_system")
OAUTH_STATUSES = ("pending", "authorized", "error")
MESSAGE_ROLES = ("assistant", "user", "tool", "function", "system", "approval", "summary")


@dataclass(frozen=True)
class Vocabulary:
    code: str  # finding code
    table: str
    column: str
    values: tuple[str, ...]
    nullable: bool = True  # NULL is fine (Optional in Letta's model)


VOCABULARIES: tuple[Vocabulary, ...] = (
    Vocabulary("values.message_role", "messages", "role", MESSAGE_ROLES, nullable=False),
    Vocabulary("values.run_status", "runs", "status", RUN_STATUSES, nullable=False),
    Vocabulary("values.stop_reason", "runs", "stop_reason", STOP_REASONS),
    Vocabulary("values.stop_reason", "steps", "stop_reason", STOP_REASONS),
    Vocabulary("values.stop_reason", "jobs", "stop_reason", STOP_REASONS),
    Vocabulary("values.stop_reason", "agents", "last_stop_reason", STOP_REASONS),
    Vocabulary("values.job_status", "jobs", "status", JOB_STATUSES, nullable=False),
    Vocabulary("values.job_status", "llm_batch_job", "status", JOB_STATUSES, nullable=False),
    Vocabulary("values.job_status", "llm_batch_items", "request_status", JOB_STATUSES, nullable=False),
    Vocabulary("values.job_type", "jobs", "job_type", JOB_TYPES, nullable=False),
    Vocabulary(
        "values.batch_step_status", "llm_batch_items", "step_status", BATCH_STEP_STATUSES, nullable=False
    ),
    Vocabulary("values.file_status", "files", "processing_status", FILE_STATUSES, nullable=False),
    Vocabulary("values.agent_type", "agents", "agent_type", AGENT_TYPES),
    Vocabulary("values.tool_type", "tools", "tool_type", TOOL_TYPES),
    Vocabulary("values.tool_source_type", "tools", "source_type", TOOL_SOURCE_TYPES),
    Vocabulary("values.manager_type", "groups", "manager_type", MANAGER_TYPES, nullable=False),
    Vocabulary("values.identity_type", "identities", "identity_type", IDENTITY_TYPES, nullable=False),
    Vocabulary("values.mcp_server_type", "mcp_server", "server_type", MCP_SERVER_TYPES),
    Vocabulary("values.provider_category", "providers", "provider_category", PROVIDER_CATEGORIES),
    Vocabulary("values.actor_type", "block_history", "actor_type", ACTOR_TYPES),
    Vocabulary("values.oauth_status", "mcp_oauth", "status", OAUTH_STATUSES, nullable=False),
)
