"""Letta 0.16.8 agent files (``.af``): the ``AgentFileSchema`` as pydantic models.

The shape follows ``letta/schemas/agent_file.py`` (docs/LETTA.md §7): seven required entity
lists, file-local ids ``<prefix>-<n>``, and every agent carrying its messages and file
attachments inline. Two rules shape these models:

* **Interoperable**: every key Letta writes is modelled with Letta's name and type, and what
  lifeboat writes is accepted by Letta's importer. Letta objects stored as JSON columns
  (``llm_config``, tool rules, message content parts...) are kept *verbatim* (``JsonObject``)
  after a type check against the fields Letta requires, so a file round-trips byte for byte
  into the same JSON the server would have stored.
* **Lossless when asked**: ``--complete`` exports add a top-level ``lifeboat`` key
  (:class:`CompleteExtras`). Letta's ``AgentFileSchema`` is a plain pydantic model whose
  unknown keys are ignored, so Letta imports such a file as if the key were absent; lifeboat's
  importer restores what it carries (out-of-context history, archives with embeddings,
  identities, named conversations, agent state Letta's export drops).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from lifeboat.letta.agent_file_types import (
    check_approvals,
    check_compaction_settings,
    check_content_parts,
    check_embedding_config,
    check_identity_properties,
    check_llm_config,
    check_manager_config,
    check_requirements,
    check_response_format,
    check_stdio_config,
    check_tool_calls,
    check_tool_returns,
    check_tool_rules,
)
from lifeboat.letta.vocabularies import AgentType, ToolType

FORMAT_VERSION = 1  # version of the ``lifeboat`` extras block

# File-local id prefixes, as Letta's AgentSerializationManager assigns them.
FILE_ID_PREFIX = {
    "agents": "agent",
    "groups": "group",
    "blocks": "block",
    "files": "file",
    "sources": "source",
    "tools": "tool",
    "mcp_servers": "mcp_server",
    "messages": "message",
    # only in lifeboat's extras
    "archives": "archive",
    "passages": "passage",
    "source_passages": "passage",
    "identities": "identity",
    "conversations": "conv",
}

JsonObject = dict[str, Any]


class _Model(BaseModel):
    """Letta's entity schemas ignore keys they do not know; so do we (forward compatible)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# NUL characters and lone surrogates are refused for the whole document before parsing
# (agent_file_parse.scan_json), so plain ``str`` is safe for PostgreSQL text here.
Text = str
LlmConfig = Annotated[JsonObject, AfterValidator(check_llm_config)]
EmbeddingConfig = Annotated[JsonObject, AfterValidator(check_embedding_config)]
ToolRules = Annotated[list[JsonObject], AfterValidator(check_tool_rules)]
ContentParts = Annotated[list[JsonObject], AfterValidator(check_content_parts)]
ToolCalls = Annotated[list[JsonObject], AfterValidator(check_tool_calls)]
ToolReturns = Annotated[list[JsonObject], AfterValidator(check_tool_returns)]
Approvals = Annotated[list[JsonObject], AfterValidator(check_approvals)]
ManagerConfig = Annotated[JsonObject, AfterValidator(check_manager_config)]
CompactionSettings = Annotated[JsonObject, AfterValidator(check_compaction_settings)]
ResponseFormat = Annotated[JsonObject, AfterValidator(check_response_format)]
Requirements = Annotated[list[JsonObject], AfterValidator(check_requirements)]
IdentityProperties = Annotated[list[JsonObject], AfterValidator(check_identity_properties)]
StdioConfig = Annotated[JsonObject, AfterValidator(check_stdio_config)]


class MessageEntry(_Model):
    """``MessageSchema``: one message, with the agent's file id in ``agent_id``."""

    id: str
    role: Literal["system", "user", "assistant", "tool", "function", "approval", "summary"]
    content: ContentParts | Text | None = None
    name: Text | None = None
    model: Text | None = None
    agent_id: str | None = None
    tool_calls: ToolCalls | None = None
    tool_call_id: Text | None = None
    tool_returns: ToolReturns | None = None
    created_at: datetime | None = None
    approve: bool | None = None
    approval_request_id: Text | None = None
    denial_reason: Text | None = None
    approvals: Approvals | None = None
    group_id: Text | None = None
    batch_item_id: Text | None = None
    otid: Text | None = None
    sender_id: Text | None = None
    type: Literal["message"] | None = "message"


class FileAgentEntry(_Model):
    """``FileAgentSchema``: an agent's view of one file (Letta keeps the DB id in ``id``)."""

    id: str
    agent_id: str
    file_id: str
    source_id: str
    file_name: Text
    is_open: bool = True
    visible_content: Text | None = None
    last_accessed_at: datetime | None = None
    start_line: int | None = None
    end_line: int | None = None


class AgentEntry(_Model):
    """``AgentSchema`` = Letta's ``CreateAgent`` plus ids, messages and file attachments."""

    id: str
    name: Text
    agent_type: AgentType = "letta_v1_agent"
    system: Text | None = None
    description: Text | None = None
    metadata: JsonObject | None = None
    llm_config: LlmConfig | None = None
    embedding_config: EmbeddingConfig | None = None
    compaction_settings: CompactionSettings | None = None
    tool_rules: ToolRules | None = None
    tags: list[Text] | None = None
    response_format: ResponseFormat | None = None
    message_buffer_autoclear: bool = False
    enable_sleeptime: bool | None = None
    timezone: Text | None = None
    max_files_open: int | None = Field(None, ge=1, le=1000)
    per_file_view_window_char_limit: int | None = Field(None, ge=1, le=2**31 - 1)
    hidden: bool | None = None
    secrets: dict[Text, Text | None] | None = None
    tool_exec_environment_variables: dict[Text, Text | None] | None = None
    project_id: Text | None = None
    template_id: Text | None = None
    base_template_id: Text | None = None
    # references (file ids)
    tool_ids: list[str] | None = None
    block_ids: list[str] | None = None
    source_ids: list[str] | None = None
    folder_ids: list[str] | None = None
    identity_ids: list[str] | None = None
    group_ids: list[str] = []
    in_context_message_ids: list[str] = []
    messages: list[MessageEntry] = []
    files_agents: list[FileAgentEntry] = []
    # The rest of Letta's CreateAgent, with the values Letta's export writes. The flags matter:
    # Letta's importer would otherwise attach base tools/rules or a default folder.
    include_base_tools: bool = False
    include_multi_agent_tools: bool = False
    include_base_tool_rules: bool | None = False
    include_default_source: bool = False
    memory_blocks: list[JsonObject] | None = []
    tools: list[str] | None = []
    initial_message_sequence: list[JsonObject] | None = None
    model: Text | None = None
    embedding: Text | None = None
    model_settings: JsonObject | None = None
    context_window_limit: int | None = None
    embedding_chunk_size: int | None = None
    max_tokens: int | None = None
    max_reasoning_tokens: int | None = None
    enable_reasoner: bool | None = False
    reasoning: bool | None = None
    from_template: Text | None = None
    template: bool = False
    project: Text | None = None
    memory_variables: dict[Text, Text] | None = None
    parallel_tool_calls: bool | None = None


class BlockEntry(_Model):
    """``BlockSchema`` (Letta's ``CreateBlock``)."""

    id: str
    label: Text
    value: Text = ""
    limit: int = Field(100000, ge=0, le=2**31 - 1)
    description: Text | None = None
    read_only: bool = False
    hidden: bool | None = None
    metadata: JsonObject | None = None
    template_name: Text | None = None
    is_template: bool = False
    preserve_on_migration: bool | None = False
    project_id: Text | None = None
    template_id: Text | None = None
    base_template_id: Text | None = None
    deployment_id: Text | None = None
    entity_id: Text | None = None
    tags: list[Text] | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value  # CreateBlock.ensure_value_is_string


class ToolEntry(_Model):
    """``ToolSchema`` (Letta's full ``Tool``)."""

    id: str
    name: Text
    tool_type: ToolType = "custom"
    description: Text | None = None
    source_type: Text | None = None
    source_code: Text | None = None
    json_schema: JsonObject | None = None
    args_json_schema: JsonObject | None = None
    tags: list[Text] = []
    return_char_limit: int = Field(50000, ge=1, le=1_000_000)
    pip_requirements: Requirements | None = None
    npm_requirements: Requirements | None = None
    default_requires_approval: bool | None = None
    enable_parallel_execution: bool | None = False
    created_by_id: Text | None = None
    last_updated_by_id: Text | None = None
    metadata_: JsonObject | None = None
    project_id: Text | None = None


class SourceEntry(_Model):
    """``SourceSchema`` (a folder)."""

    id: str
    name: Text
    description: Text | None = None
    instructions: Text | None = None
    metadata: JsonObject | None = None
    embedding: Text | None = None
    embedding_chunk_size: int | None = None
    embedding_config: EmbeddingConfig


class FileEntry(_Model):
    """``FileSchema``: file metadata plus the parsed text (no embeddings)."""

    id: str
    source_id: str
    file_name: Text | None = None
    original_file_name: Text | None = None
    file_path: Text | None = None
    file_type: Text | None = None
    file_size: int | None = Field(None, ge=0)
    file_creation_date: Text | None = None
    file_last_modified_date: Text | None = None
    processing_status: Literal["pending", "parsing", "embedding", "completed", "error"] = "pending"
    error_message: Text | None = None
    total_chunks: int | None = Field(None, ge=0)
    chunks_embedded: int | None = Field(None, ge=0)
    content: Text | None = None


class GroupEntry(_Model):
    """``GroupSchema``: a multi-agent group managed by an exported agent."""

    id: str
    agent_ids: list[str]
    description: Text = ""
    manager_config: ManagerConfig = Field(default_factory=lambda: {"manager_type": "round_robin"})
    project_id: Text | None = None
    shared_block_ids: list[str] = []
    hidden: bool | None = None


class McpServerEntry(_Model):
    """``MCPServerSchema`` (never carries tokens, headers or stdio ``env``)."""

    id: str
    server_type: Literal["sse", "stdio", "streamable_http"]
    server_name: Text
    server_url: Text | None = None
    stdio_config: StdioConfig | None = None
    metadata_: JsonObject | None = None


class SkillEntry(_Model):
    name: Text
    files: dict[Text, Text] | None = None
    source_url: Text | None = None


# ---- lifeboat's ``--complete`` extras ----------------------------------------------------------


class MessageExtra(_Model):
    """Message columns Letta's export drops (keyed by the message's file id)."""

    text: Text | None = None  # legacy text column
    is_err: bool | None = None
    updated_at: datetime | None = None


class ConversationMember(_Model):
    """One ``conversation_messages`` row: which message, where, and whether it is in context."""

    message_id: str
    position: int
    in_context: bool = True


class ConversationEntry(_Model):
    """A named conversation: its own messages, its ordered members, its isolated block copies."""

    id: str
    summary: Text | None = None
    model: Text | None = None
    model_settings: JsonObject | None = None
    last_message_at: datetime | None = None
    created_at: datetime | None = None
    messages: list[MessageEntry] = []  # messages whose conversation_id is this conversation
    members: list[ConversationMember] = []  # may also name default-conversation messages
    isolated_block_ids: list[str] = []  # blocks_conversations: the conversation's own block copies


class GroupState(_Model):
    """Progress of a group the agent manages (sleeptime turns)."""

    turns_counter: int | None = None
    last_processed_message_id: str | None = None  # a message file id


class AgentExtra(_Model):
    """Agent state Letta's export forces or drops."""

    enable_sleeptime: bool | None = None
    hidden: bool | None = None
    created_at: datetime | None = None
    last_run_completion: datetime | None = None
    last_run_duration_ms: int | None = None
    last_stop_reason: Text | None = None
    deployment_id: Text | None = None
    entity_id: Text | None = None
    # raw columns where the Letta-visible field holds the value Letta derives on read
    max_files_open: int | None = None
    per_file_view_window_char_limit: int | None = None
    timezone: Text | None = None
    archive_ids: list[str] = []
    owned_archive_ids: list[str] = []
    identity_ids: list[str] = []
    conversations: list[ConversationEntry] = []
    group_state: dict[str, GroupState] = {}  # keyed by the group's file id


class ArchiveEntry(_Model):
    id: str
    name: Text
    description: Text | None = None
    vector_db_provider: Literal["NATIVE", "TPUF", "PINECONE"] = "NATIVE"
    embedding_config: EmbeddingConfig | None = None
    metadata: JsonObject | None = None
    created_at: datetime | None = None


class PassageEntry(_Model):
    """An archival (``archive_id``) or file (``file_id``) passage with its embedding.

    ``embedding`` is base64 of little-endian float32 values, trimmed to the model's dimension
    (the database pads every vector with zeros to 4096).
    """

    id: str
    text: Text
    embedding: str | None = None
    embedding_config: EmbeddingConfig | None = None
    metadata: JsonObject = {}
    tags: list[Text] | None = None
    created_at: datetime | None = None
    archive_id: str | None = None
    file_id: str | None = None
    source_id: str | None = None
    file_name: Text | None = None


class IdentityEntry(_Model):
    id: str
    identifier_key: Text
    name: Text
    identity_type: Literal["org", "user", "other"]
    properties: IdentityProperties = []
    project_id: Text | None = None
    agent_ids: list[str] = []
    block_ids: list[str] = []


class CompleteExtras(_Model):
    """The top-level ``lifeboat`` key of a ``--complete`` export (ignored by Letta)."""

    format: int = FORMAT_VERSION
    complete: bool = True
    agents: dict[str, AgentExtra] = {}
    messages: dict[str, MessageExtra] = {}
    isolated_blocks: list[BlockEntry] = []  # conversation block copies (not in ``blocks``)
    archives: list[ArchiveEntry] = []
    passages: list[PassageEntry] = []
    source_passages: list[PassageEntry] = []
    identities: list[IdentityEntry] = []


class AgentFile(_Model):
    """The whole document (``AgentFileSchema``)."""

    agents: list[AgentEntry]
    groups: list[GroupEntry]
    blocks: list[BlockEntry]
    files: list[FileEntry]
    sources: list[SourceEntry]
    tools: list[ToolEntry]
    mcp_servers: list[McpServerEntry]
    skills: list[SkillEntry] = []
    metadata: dict[str, str] = {}
    created_at: datetime | None = None
    lifeboat: CompleteExtras | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document (``lifeboat`` omitted unless present, like Letta's key order)."""
        data = self.model_dump(mode="json", exclude={"lifeboat"})
        if self.lifeboat is not None:
            data["lifeboat"] = self.lifeboat.model_dump(mode="json")
        return data


def describe_validation_error(error: ValidationError, limit: int = 50) -> list[str]:
    """pydantic errors as one-line ``path: message`` strings (paths like ``agents[0].name``)."""
    problems = []
    for item in error.errors(include_url=False)[:limit]:
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = str(item["msg"]).replace("\n", " ")
        problems.append(f"{path or '<document>'}: {message}")
    hidden = len(error.errors()) - limit
    if hidden > 0:
        problems.append(f"... and {hidden} more schema errors")
    return problems
