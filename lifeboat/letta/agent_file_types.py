"""Type checks for the Letta objects an agent file stores as JSON (LLM config, tool rules...).

Lifeboat writes these objects into Letta's JSON columns verbatim, so they must be what Letta's
own pydantic models accept when the server later loads the agent: a value Letta cannot parse
makes the whole agent unreadable through the API. Each checker validates the fields Letta
*requires* (names, types, enum values, from ``letta/schemas`` at 0.16.8), lets unknown fields
through (newer or optional Letta fields), and returns the original object unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _LlmConfig(_Open):
    model: str
    model_endpoint_type: Literal[
        "openai", "anthropic", "google_ai", "google_vertex", "azure", "groq", "ollama", "webui",
        "webui-legacy", "lmstudio", "lmstudio-legacy", "lmstudio-chatcompletions", "llamacpp",
        "koboldcpp", "vllm", "hugging-face", "minimax", "mistral", "together", "bedrock", "deepseek",
        "xai", "zai", "zai_coding", "baseten", "fireworks", "openrouter", "chatgpt_oauth",
    ]  # fmt: skip
    model_endpoint: str | None = None
    provider_name: str | None = None
    provider_category: Literal["base", "byok"] | None = None
    context_window: int = Field(ge=1)
    put_inner_thoughts_in_kwargs: bool | None = None
    handle: str | None = None
    temperature: float = 0.7
    max_tokens: int | None = None
    enable_reasoner: bool = True
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    max_reasoning_tokens: int = 0
    effort: Literal["low", "medium", "high", "max"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    parallel_tool_calls: bool | None = None
    strict: bool = False


class _EmbeddingConfig(_Open):
    embedding_endpoint_type: Literal[
        "openai", "anthropic", "bedrock", "google_ai", "google_vertex", "azure", "groq", "ollama",
        "webui", "webui-legacy", "lmstudio", "lmstudio-legacy", "llamacpp", "koboldcpp", "vllm",
        "hugging-face", "mistral", "together", "pinecone",
    ]  # fmt: skip
    embedding_endpoint: str | None = None
    embedding_model: str
    embedding_dim: int = Field(ge=1, le=4096)  # MAX_EMBEDDING_DIM: vectors are vector(4096)
    embedding_chunk_size: int | None = 300
    handle: str | None = None
    batch_size: int = 32


class _ToolRule(_Open):
    tool_name: str
    type: Literal[
        "run_first", "exit_loop", "continue_loop", "conditional", "constrain_child_tools",
        "max_count_per_step", "parent_last_tool", "required_before_exit", "requires_approval",
    ]  # fmt: skip
    prompt_template: str | None = None
    children: list[str] | None = None
    child_output_mapping: dict[str, str] | None = None
    max_count_limit: int | None = None


_RULE_REQUIRES = {
    "constrain_child_tools": "children",
    "parent_last_tool": "children",
    "conditional": "child_output_mapping",
    "max_count_per_step": "max_count_limit",
}


class _ContentPart(_Open):
    type: Literal[
        "text", "image", "tool_call", "tool_return", "reasoning", "redacted_reasoning",
        "omitted_reasoning", "summarized_reasoning",
    ]  # fmt: skip
    text: str | None = None
    source: dict[str, Any] | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_call_id: str | None = None
    content: str | None = None
    is_error: bool | None = None
    is_native: bool | None = None
    reasoning: str | None = None
    data: str | None = None


_PART_REQUIRES = {
    "text": ("text",),
    "image": ("source",),
    "tool_call": ("id", "name", "input"),
    "tool_return": ("tool_call_id", "content", "is_error"),
    "reasoning": ("is_native", "reasoning"),
    "redacted_reasoning": ("data",),
}


class _Function(_Open):
    name: str
    arguments: str


class _ToolCall(_Open):
    id: str
    type: Literal["function"]
    function: _Function


class _ToolReturn(_Open):
    tool_call_id: Any = None
    status: Literal["success", "error"]
    stdout: list[str] | None = None
    stderr: list[str] | None = None


class _Approval(_Open):
    type: Literal["approval", "tool"] = "approval"
    tool_call_id: str
    approve: bool | None = None
    status: Literal["success", "error"] | None = None


class _ManagerConfig(_Open):
    manager_type: Literal["round_robin", "supervisor", "dynamic", "sleeptime", "voice_sleeptime", "swarm"]
    manager_agent_id: str | None = None
    max_turns: int | None = None
    termination_token: str | None = None
    sleeptime_agent_frequency: int | None = None
    max_message_buffer_length: int | None = None
    min_message_buffer_length: int | None = None


class _CompactionSettings(_Open):
    model: str | None = None
    model_settings: dict[str, Any] | None = None
    prompt: str | None = None
    prompt_acknowledgement: bool = False
    clip_chars: int | None = 50000
    mode: Literal["all", "sliding_window", "self_compact_all", "self_compact_sliding_window"] = (
        "sliding_window"
    )
    sliding_window_percentage: float = 0.3


class _ResponseFormat(_Open):
    type: Literal["text", "json_schema", "json_object"]
    json_schema: dict[str, Any] | None = None


class _Requirement(_Open):
    name: str = Field(min_length=1)
    version: str | None = None


class _IdentityProperty(_Open):
    key: str
    value: str | int | float | bool | dict[str, Any]
    type: Literal["string", "number", "boolean", "json"]


class _StdioConfig(_Open):
    command: str
    args: list[str]


def _first_error(error: ValidationError) -> str:
    item = error.errors(include_url=False)[0]
    path = ".".join(str(part) for part in item["loc"])
    extra = f" ({len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"{path + ': ' if path else ''}{item['msg']}{extra}"


def _check(model: type[BaseModel], value: Any) -> BaseModel:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from None


ObjectCheck = Callable[[dict[str, Any]], dict[str, Any]]
ListCheck = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _object_check(model: type[BaseModel]) -> ObjectCheck:
    """A validator that checks one JSON object against ``model`` and keeps it as written."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        _check(model, value)
        return value

    return check


def _list_check(model: type[BaseModel]) -> ListCheck:
    """A validator that checks every object of a JSON list against ``model`` and keeps them as written."""

    def check(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in value:
            _check(model, item)
        return value

    return check


def check_tool_rules(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, item in enumerate(value):
        rule = _check(_ToolRule, item)
        needed = _RULE_REQUIRES.get(str(getattr(rule, "type", "")))
        if needed and getattr(rule, needed) is None:
            raise ValueError(f"[{index}] a {rule.type} rule needs {needed!r}")  # type: ignore[attr-defined]
    return value


def check_content_parts(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, item in enumerate(value):
        part = _check(_ContentPart, item)
        kind = str(part.type)  # type: ignore[attr-defined]
        for field in _PART_REQUIRES.get(kind, ()):
            if getattr(part, field) is None:
                raise ValueError(f"[{index}] a {kind} content part needs {field!r}")
    return value


def check_response_format(value: dict[str, Any]) -> dict[str, Any]:
    parsed = _check(_ResponseFormat, value)
    if parsed.type == "json_schema" and not isinstance(parsed.json_schema, dict):  # type: ignore[attr-defined]
        raise ValueError("a json_schema response format needs 'json_schema'")
    return value


check_llm_config = _object_check(_LlmConfig)
check_embedding_config = _object_check(_EmbeddingConfig)
check_manager_config = _object_check(_ManagerConfig)
check_compaction_settings = _object_check(_CompactionSettings)
check_stdio_config = _object_check(_StdioConfig)
check_tool_calls = _list_check(_ToolCall)
check_tool_returns = _list_check(_ToolReturn)
check_approvals = _list_check(_Approval)
check_requirements = _list_check(_Requirement)
check_identity_properties = _list_check(_IdentityProperty)
