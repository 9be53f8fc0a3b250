"""Names and records of Letta Code's local backend (the pinned version's layout).

Under the backend directory::

    agents/<base64url(agent id)>.json                     the agent record
    conversations/<base64url(conversation key)>/          one folder per conversation:
        conversation.json  manifest.json  messages.jsonl
    memfs/<agent id>/memory/                              the agent's memory git repository

A conversation key is ``default:<agent id>`` for an agent's default conversation and
``conversation:<conversation id>`` for any other. Agent ids look like ``agent-local-<uuid>``;
we keep the V1 uuid (``agent-<uuid>`` → ``agent-local-<uuid>``), so the mapping is readable
and stable across runs.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlparse

from lifeboat.letta_code.model import SourceAgent, SourceConversation

LOCAL_AGENT_PREFIX = "agent-local-"
TRANSCRIPT_SCHEMA_VERSION = 2
TRANSCRIPT_MESSAGE_FORMAT = "pi-session-entry-jsonl"
TRANSCRIPT_PROVIDER_STACK = "pi-ai"
#: Letta Code's own "no model chosen yet" handle: the placeholder for models we cannot map.
PLACEHOLDER_MODEL = "local/default"
OPENAI_API_HOST = "api.openai.com"

#: V1 ``llm_config.model_endpoint_type`` → Letta Code model-handle provider (docs/MIGRATE.md).
PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google_ai": "google",
    "google_vertex": "google",
    "openrouter": "openrouter",
    "zai": "zai",
    "ollama": "ollama",
    "lmstudio": "lmstudio",
    "lmstudio_openai": "lmstudio",
    "llamacpp": "llama.cpp",
    "llama_cpp": "llama.cpp",
}


def encode_segment(value: str) -> str:
    """A path segment as Letta Code spells it: unpadded base64url of the UTF-8 bytes."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def local_agent_id(v1_id: str) -> str:
    """``agent-<uuid>`` → ``agent-local-<uuid>`` (any other shape is prefixed whole)."""
    rest = v1_id[len("agent-") :] if v1_id.startswith("agent-") else v1_id
    return LOCAL_AGENT_PREFIX + rest


def agent_record_path(agent_id: str) -> str:
    return f"agents/{encode_segment(agent_id)}.json"


def conversation_key(conversation_id: str | None, agent_id: str) -> str:
    return f"default:{agent_id}" if conversation_id is None else f"conversation:{conversation_id}"


def conversation_dir(conversation_id: str | None, agent_id: str) -> str:
    return f"conversations/{encode_segment(conversation_key(conversation_id, agent_id))}"


def memfs_dir(agent_id: str) -> str:
    return f"memfs/{agent_id}/memory"


def model_handle(llm_config: dict[str, Any]) -> tuple[str, str | None]:
    """(Letta Code model handle, a note for the report or None).

    An OpenAI endpoint other than OpenAI's own becomes ``openai-compatible/<model>`` (connect
    it with ``letta connect openai-compatible --base-url <endpoint>``); an endpoint type we do
    not know becomes the placeholder ``local/default``.
    """
    model = llm_config.get("model")
    endpoint_type = llm_config.get("model_endpoint_type")
    if not isinstance(model, str) or not model:
        return PLACEHOLDER_MODEL, "no model in llm_config: placeholder model set"
    provider = PROVIDERS.get(str(endpoint_type))
    if provider is None:
        return (
            PLACEHOLDER_MODEL,
            f"model {model!r} (endpoint type {endpoint_type!r}) has no Letta Code counterpart",
        )
    endpoint = str(llm_config.get("model_endpoint") or "")
    if provider == "openai" and endpoint and urlparse(endpoint).hostname != OPENAI_API_HOST:
        return f"openai-compatible/{model}", f"custom OpenAI-compatible endpoint {shown_url(endpoint)}"
    return f"{provider}/{model}", None


def shown_url(url: str) -> str:
    """A URL for the report, without user, password or query (they may hold credentials)."""
    parts = urlparse(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return parts._replace(netloc=host, query="", fragment="").geturl()


def model_settings(llm_config: dict[str, Any], handle: str) -> dict[str, Any]:
    """The settings with a Letta Code counterpart (context window, output tokens, parallel tools...)."""
    settings: dict[str, Any] = {}
    provider = handle.split("/", 1)[0]
    if provider != "local":
        settings["provider_type"] = provider
    if isinstance(llm_config.get("context_window"), int):
        settings["context_window_limit"] = llm_config["context_window"]
    if isinstance(llm_config.get("max_tokens"), int):
        settings["max_tokens"] = llm_config["max_tokens"]
    if isinstance(llm_config.get("parallel_tool_calls"), bool):
        settings["parallel_tool_calls"] = llm_config["parallel_tool_calls"]
    if isinstance(llm_config.get("temperature"), int | float):
        settings["temperature"] = llm_config["temperature"]
    effort = llm_config.get("reasoning_effort")
    if isinstance(effort, str) and effort:
        settings["reasoning_effort"] = effort
    return settings


def agent_record(agent: SourceAgent) -> tuple[dict[str, Any], str | None]:
    """The agent's ``agents/<id>.json`` record and the model note for the report."""
    handle, note = model_handle(agent.llm_config)
    record: dict[str, Any] = {
        "id": local_agent_id(agent.id),
        "name": agent.name,
        "description": agent.description,
        "system": agent.system,
        "tags": list(agent.tags),
        "model": handle,
        "model_settings": model_settings(agent.llm_config, handle),
    }
    if agent.hidden:
        record["hidden"] = True
    return record, note


def conversation_record(
    agent_id: str, conversation: SourceConversation, in_context: list[str], updated_at: str
) -> dict[str, Any]:
    """``conversation.json``: the conversation and its context window (message ids, oldest first)."""
    return {
        "id": conversation.id or "default",
        "agent_id": agent_id,
        "archived": False,
        "archived_at": None,
        "created_at": conversation.created_at,
        "updated_at": updated_at,
        "last_message_at": conversation.last_message_at,
        "summary": conversation.summary,
        "in_context_message_ids": in_context,
    }


def transcript_manifest(created_at: str) -> dict[str, Any]:
    return {
        "schema_version": TRANSCRIPT_SCHEMA_VERSION,
        "message_format": TRANSCRIPT_MESSAGE_FORMAT,
        "provider_stack": TRANSCRIPT_PROVIDER_STACK,
        "created_at": created_at,
        "migrated_from": "letta-v1 (lifeboat)",
    }


def pretty_json(value: Any) -> bytes:
    """JSON the way Letta Code writes its records (two-space indent, trailing newline)."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()
