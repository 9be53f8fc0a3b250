"""A small deployment made through an *older* Letta release's own REST API (the release matrix).

Kept lean so a fresh CI machine builds every release quickly (the 0.16.8 deployment of
:mod:`lifeboat.sandbox.letta_populate` is the large one). Every release of the matrix gets:

* a shared block ``team`` attached to every main agent;
* ``rl-agent-0`` … ``rl-agent-2`` (the release's default agent type), each with its own
  ``human``/``persona`` blocks and two turns (the first asks for a ``memory_insert`` when the
  agent has that tool);
* two archival passages per agent through ``POST /v1/agents/{id}/archival-memory``;
* a folder ``rl-handbook`` with one uploaded text file, attached to ``rl-agent-0``;
* ``rl-agent-2`` created with ``enable_sleeptime`` (sibling ``rl-agent-2-sleeptime`` + a
  ``sleeptime`` group) on releases that support it.

Older releases refuse the ``openai-proxy/<model>`` handles against a local endpoint (0.14.0:
"Provider openai-proxy is not supported"), so agents and folders are created with full
``llm_config`` / ``embedding_config`` objects pointing at the fake LLM's fixed URL.

:func:`api_view` records what the server shows of every agent (blocks, messages, archival
passages); the build stores it so tests can compare another server's answers with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lifeboat.errors import SandboxError
from lifeboat.sandbox.fake_llm import CHAT_MODEL, FAKE_LLM_BASE_URL
from lifeboat.sandbox.letta_server import LettaServer

AGENT_COUNT = 3
SLEEPTIME_AGENT = 2
FOLDER_AGENT = 0
FOLDER_NAME = "rl-handbook"
FILE_NAME = "handbook.txt"
SHARED_LABEL = "team"
HANDBOOK_TEXT = "\n".join(
    f"Rule {n} of the lifeboat handbook: back up nightly, restore monthly, rehearse upgrades."
    for n in range(1, 11)
)

LLM_CONFIG: dict[str, Any] = {
    "model": CHAT_MODEL,
    "model_endpoint_type": "openai",
    "model_endpoint": FAKE_LLM_BASE_URL,
    "context_window": 32000,
}
EMBEDDING_CONFIG: dict[str, Any] = {
    "embedding_endpoint_type": "openai",
    "embedding_endpoint": FAKE_LLM_BASE_URL,
    "embedding_model": "text-embedding-3-small",
    "embedding_dim": 1536,
    "embedding_chunk_size": 300,
}


def agent_name(index: int) -> str:
    return f"rl-agent-{index}"


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SandboxError(f"timed out after {timeout:.0f} s waiting for {what}")


def _items(answer: Any) -> list[dict[str, Any]]:
    """A list endpoint's entries, whether the release answers a list or ``{"items": [...]}``."""
    if isinstance(answer, dict):
        for key in ("items", "messages", "data"):
            if isinstance(answer.get(key), list):
                return list(answer[key])
        raise SandboxError(f"unexpected list answer: {sorted(answer)}")
    return list(answer or [])


def create_folder(server: LettaServer) -> tuple[str, str]:
    folder = server.post(
        "/v1/folders/",
        {"name": FOLDER_NAME, "description": "handbook", "embedding_config": EMBEDDING_CONFIG},
    )
    files = {"file": (FILE_NAME, HANDBOOK_TEXT.encode(), "text/plain")}
    uploaded = server.request("POST", f"/v1/folders/{folder['id']}/upload", files=files)

    def done() -> bool:
        for meta in _items(server.get(f"/v1/folders/{folder['id']}/files")):
            if meta["id"] == uploaded["id"]:
                if meta.get("processing_status") == "error":
                    raise SandboxError(f"file processing failed: {meta.get('error_message')}")
                return bool(meta.get("processing_status") == "completed")
        return False

    _wait(done, 180, "file processing")
    return str(folder["id"]), str(uploaded["id"])


def agent_body(index: int, shared_block_id: str, sleeptime: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": agent_name(index),
        "description": f"release-matrix agent {index}",
        "llm_config": LLM_CONFIG,
        "embedding_config": EMBEDDING_CONFIG,
        "tags": ["lifeboat-release"],
        "memory_blocks": [
            {"label": "human", "value": f"The user of agent {index} is called User{index}."},
            {"label": "persona", "value": f"I am release-matrix agent {index}."},
        ],
        "block_ids": [shared_block_id],
    }
    if sleeptime and index == SLEEPTIME_AGENT:
        body["enable_sleeptime"] = True
    return body


def turns_for(index: int) -> list[str]:
    insert = json.dumps({"label": "human", "new_string": f"User{index} likes topic {index}."})
    return [f"Hello, I am User{index}. [[memory_insert {insert}]]", "Thanks, please summarize our chat."]


def populate(server: LettaServer, *, sleeptime: bool, quiet: Callable[[], bool]) -> dict[str, Any]:
    """Fill the release's database through ``server``; ``quiet()`` tells when no run is active."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    block = server.post(
        "/v1/blocks/", {"label": SHARED_LABEL, "value": "Shared notes of the release-matrix crew."}
    )
    folder_id, file_id = create_folder(server)
    timings["shared"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    agents = [server.post("/v1/agents/", agent_body(i, block["id"], sleeptime)) for i in range(AGENT_COUNT)]
    server.patch(f"/v1/agents/{agents[FOLDER_AGENT]['id']}/folders/attach/{folder_id}", {})
    for index, agent in enumerate(agents):
        for n in range(2):
            server.post(
                f"/v1/agents/{agent['id']}/archival-memory",
                {"text": f"Archived fact {n} of agent {index}: drills build trust."},
            )
    timings["agents"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    for index, agent in enumerate(agents):
        for text in turns_for(index):
            server.post(
                f"/v1/agents/{agent['id']}/messages", {"messages": [{"role": "user", "content": text}]}
            )
    _wait(quiet, 180, "active runs to finish")
    timings["turns"] = round(time.monotonic() - started, 2)
    return {
        "agent_ids": {agent_name(i): a["id"] for i, a in enumerate(agents)},
        "shared_block_id": block["id"],
        "folder": {"id": folder_id, "name": FOLDER_NAME, "file_id": file_id, "file_name": FILE_NAME},
        "timings": timings,
    }


def _message_text(message: dict[str, Any]) -> str:
    for key in ("content", "tool_call", "tool_return", "reasoning"):
        value = message.get(key)
        if value:
            if isinstance(value, dict):
                value = {k: value.get(k) for k in ("name", "arguments") if k in value} or value
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return ""


def api_view(server: LettaServer) -> dict[str, Any]:
    """What the API shows of every agent: name, memory blocks, messages, archival passages.

    Only fields every release of the matrix returns alike are kept, so the view of an old
    release's server can be compared with 0.16.8's on the upgraded database.
    """
    view: dict[str, Any] = {}
    for agent in _items(server.get("/v1/agents/", limit=1000)):
        agent_id = agent["id"]
        blocks = _items(server.get(f"/v1/agents/{agent_id}/core-memory/blocks"))
        messages = _items(server.get(f"/v1/agents/{agent_id}/messages", limit=1000))
        passages = _items(server.get(f"/v1/agents/{agent_id}/archival-memory", limit=1000))
        view[agent_id] = {
            "name": agent["name"],
            "agent_type": agent.get("agent_type"),
            "blocks": sorted([b["id"], b["label"], b["value"]] for b in blocks),
            "messages": [[m["id"], m.get("message_type"), _message_text(m)] for m in messages],
            "passages": sorted([p["id"], p["text"]] for p in passages),
        }
    return view
