"""Hand-made agent files covering every entity of the format (no database needed)."""

from __future__ import annotations

import copy
import json
from typing import Any

from lifeboat.letta.agent_file_embedding import encode_embedding

LLM = {
    "model": "fake-model",
    "display_name": None,
    "model_endpoint_type": "openai",
    "model_endpoint": "http://127.0.0.1:9/v1",
    "provider_name": "openai-proxy",
    "provider_category": "base",
    "model_wrapper": None,
    "context_window": 32000,
    "put_inner_thoughts_in_kwargs": False,
    "handle": "openai-proxy/fake-model",
    "temperature": 0.7,
    "max_tokens": None,
    "enable_reasoner": False,
    "reasoning_effort": None,
    "max_reasoning_tokens": 0,
}
EMBEDDING = {
    "embedding_endpoint_type": "openai",
    "embedding_endpoint": "https://api.openai.com/v1",
    "embedding_model": "text-embedding-3-small",
    "embedding_dim": 8,
    "embedding_chunk_size": 300,
    "handle": "openai/text-embedding-3-small",
    "batch_size": 32,
}


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "signature": None}]


def _message(n: int, role: str, agent: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"message-{n}",
        "role": role,
        "agent_id": agent,
        "content": _text(text),
        "created_at": f"2026-01-01T00:00:{n:02d}Z",
        "type": "message",
        **extra,
    }


def _agent(n: int, name: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": f"agent-{n}",
        "name": name,
        "agent_type": "letta_v1_agent",
        "system": f"You are {name}.",
        "llm_config": copy.deepcopy(LLM),
        "embedding_config": copy.deepcopy(EMBEDDING),
        "tool_rules": [],
        "tags": ["demo"],
        "metadata": {},
        "message_buffer_autoclear": False,
        "enable_sleeptime": False,
        "timezone": "UTC",
        "max_files_open": 5,
        "per_file_view_window_char_limit": 15000,
        "include_base_tools": False,
        "include_multi_agent_tools": False,
        "memory_blocks": [],
        "tools": [],
        "messages": messages,
        "in_context_message_ids": [m["id"] for m in messages],
        "files_agents": [],
        "group_ids": [],
        **extra,
    }


def rich_document(*, complete: bool = True) -> dict[str, Any]:
    """Two agents in a sleeptime group, shared blocks, tools, a folder with a file, extras."""
    call = {"id": "call-1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    main_messages = [
        _message(0, "system", "agent-0", "You are helper. <memory/>"),
        _message(1, "user", "agent-0", "hello", otid="otid-1"),
        _message(2, "assistant", "agent-0", "let me look", tool_calls=[call]),
        _message(
            3,
            "tool",
            "agent-0",
            "found",
            tool_call_id="call-1",
            tool_returns=[
                {
                    "tool_call_id": "call-1",
                    "status": "success",
                    "stdout": [],
                    "stderr": [],
                    "func_response": "found",
                }
            ],
        ),
        _message(4, "assistant", "agent-0", "done"),
    ]
    sibling_messages = [_message(5, "system", "agent-1", "You are helper-sleeptime.")]
    main = _agent(
        0,
        "helper",
        main_messages,
        tool_ids=["tool-0", "tool-1"],
        block_ids=["block-0", "block-1", "block-2"],
        source_ids=["source-0"],
        secrets={"API_TOKEN": ""},
        tool_exec_environment_variables={"API_TOKEN": ""},
        group_ids=["group-0"],
        files_agents=[
            {
                "id": "file_agent-9b0e4c52-2b50-4a4f-9d37-3b1d0a8f0c11",
                "agent_id": "agent-0",
                "file_id": "file-0",
                "source_id": "source-0",
                "file_name": "handbook/rules.txt",
                "is_open": True,
                "visible_content": "1: rule one",
                "last_accessed_at": "2026-01-01T00:01:00Z",
                "start_line": None,
                "end_line": None,
            }
        ],
    )
    main["in_context_message_ids"] = (
        ["message-0", "message-3", "message-4"] if complete else main["in_context_message_ids"]
    )
    sibling = _agent(
        1,
        "helper-sleeptime",
        sibling_messages,
        agent_type="sleeptime_agent",
        block_ids=["block-0", "block-2"],
    )
    doc: dict[str, Any] = {
        "agents": [main, sibling],
        "groups": [
            {
                "id": "group-0",
                "agent_ids": ["agent-1"],
                "description": "sleeptime",
                "manager_config": {
                    "manager_type": "sleeptime",
                    "manager_agent_id": "agent-0",
                    "sleeptime_agent_frequency": 5,
                },
                "project_id": None,
                "shared_block_ids": [],
                "hidden": None,
            }
        ],
        "blocks": [
            {
                "id": "block-0",
                "label": "human",
                "value": "Name: Ada",
                "limit": 5000,
                "metadata": {},
                "tags": ["people"],
            },
            {"id": "block-1", "label": "persona", "value": "I help.", "limit": 5000, "metadata": {}},
            {
                "id": "block-2",
                "label": "team",
                "value": "shared",
                "limit": 5000,
                "metadata": {},
                "read_only": True,
            },
        ],
        "files": [
            {
                "id": "file-0",
                "source_id": "source-0",
                "file_name": "handbook/rules.txt",
                "original_file_name": "rules.txt",
                "file_type": "text/plain",
                "file_size": 11,
                "processing_status": "completed",
                "total_chunks": 1,
                "chunks_embedded": 1,
                "content": "rule one\n",
            }
        ],
        "sources": [
            {
                "id": "source-0",
                "name": "handbook",
                "description": None,
                "metadata": {},
                "embedding_config": EMBEDDING,
            }
        ],
        "tools": [
            {
                "id": "tool-0",
                "name": "lookup",
                "tool_type": "custom",
                "source_type": "python",
                "source_code": "def lookup(q: str) -> str:\n    return q\n",
                "json_schema": {
                    "name": "lookup",
                    "description": "Look up.",
                    "parameters": {"type": "object", "properties": {}},
                },
                "tags": [],
                "return_char_limit": 6000,
                "metadata_": {},
            },
            {
                "id": "tool-1",
                "name": "memory_insert",
                "tool_type": "letta_sleeptime_core",
                "json_schema": {"name": "memory_insert", "parameters": {"type": "object", "properties": {}}},
                "tags": ["letta_sleeptime_core"],
                "metadata_": {},
            },
        ],
        "mcp_servers": [],
        "skills": [],
        "metadata": {"revision_id": "1c28e167b74f"},
        "created_at": "2026-01-01T00:02:00Z",
    }
    if complete:
        doc["lifeboat"] = _extras()
    return copy.deepcopy(doc)  # callers mutate it; never share the module constants


def _extras() -> dict[str, Any]:
    vector = encode_embedding([0.5, -0.25, 0.125, 1.0, 0.0, 0.0, 0.0, 2.0])
    conversation_message = _message(6, "user", "agent-0", "in a side conversation")
    return {
        "format": 1,
        "complete": True,
        "agents": {
            "agent-0": {
                "enable_sleeptime": True,
                "hidden": None,
                "created_at": "2025-12-31T00:00:00Z",
                "last_stop_reason": "end_turn",
                "archive_ids": ["archive-0"],
                "owned_archive_ids": ["archive-0"],
                "identity_ids": ["identity-0"],
                "group_state": {"group-0": {"turns_counter": 3, "last_processed_message_id": "message-4"}},
                "conversations": [
                    {
                        "id": "conv-0",
                        "summary": "side",
                        "messages": [conversation_message],
                        "members": [
                            {"message_id": "message-0", "position": 0, "in_context": True},
                            {"message_id": "message-6", "position": 1, "in_context": True},
                        ],
                        "isolated_block_ids": ["block-3"],
                    }
                ],
            },
            "agent-1": {"enable_sleeptime": None},
        },
        "messages": {"message-1": {"text": None, "is_err": False}, "message-2": {"is_err": True}},
        "isolated_blocks": [
            {"id": "block-3", "label": "human", "value": "conversation copy", "limit": 5000, "metadata": {}}
        ],
        "archives": [
            {
                "id": "archive-0",
                "name": "helper's Archive",
                "vector_db_provider": "NATIVE",
                "embedding_config": EMBEDDING,
            }
        ],
        "passages": [
            {
                "id": "passage-0",
                "archive_id": "archive-0",
                "text": "remember this",
                "embedding": vector,
                "embedding_config": EMBEDDING,
                "metadata": {},
                "tags": ["a", "b"],
                "created_at": "2026-01-01T00:00:30Z",
            },
        ],
        "source_passages": [
            {
                "id": "passage-1",
                "file_id": "file-0",
                "source_id": "source-0",
                "file_name": "handbook/rules.txt",
                "text": "rule one",
                "embedding": vector,
                "embedding_config": EMBEDDING,
                "metadata": {},
            },
        ],
        "identities": [
            {
                "id": "identity-0",
                "identifier_key": "ada",
                "name": "Ada",
                "identity_type": "user",
                "properties": [],
                "agent_ids": ["agent-0"],
                "block_ids": ["block-0"],
            },
        ],
    }


def to_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()
