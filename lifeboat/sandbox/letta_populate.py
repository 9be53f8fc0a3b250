"""Fill a fresh Letta database through the real server's REST API, exercising the whole data model.

What gets built (names and texts are fixed; ids are Letta's random uuids):

* 20 agents ``lb-agent-00`` … ``lb-agent-19`` (``letta_v1_agent``), tagged ``lifeboat-demo`` and
  ``team-<i % 3>``, each with its own ``human``/``persona`` blocks, plus ``lb-agent-03-sleeptime``
  (agent 03 has ``enable_sleeptime``: sibling agent + sleeptime group);
* two shared blocks: ``team`` (agents 00-09) and ``project`` (agents 05-14);
* a custom python tool ``lookup_order`` (agents 00-04, called by 00);
* archival passages inserted via REST (agents 00-09) and by ``archival_memory_insert`` tool calls
  (agents 10-12, which get the archival tools);
* three identities (agents 00-08); one agent secret (agent 01); a folder with an uploaded text
  file attached to agents 00-06 (files_agents, file blocks);
* three turns per agent through the blocking, streaming and async endpoints, with memory
  insert/replace tool calls; five turns for the sleeptime agent; a named conversation (agent 02);
* finally two requests left mid-step by SIGKILLing the server during slow fake-LLM calls:
  agent 18 (blocking, first LLM call) and agent 19 (streaming, second call after a memory
  insert). Their runs stay ``created``/``running`` with a ``PENDING`` step.

:func:`populate` returns the "facts" (ids for later tests); see :mod:`lifeboat.sandbox.deployment`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from lifeboat.errors import SandboxError
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_server import EMBEDDING_HANDLE, LLM_HANDLE, LettaServer

AGENT_COUNT = 20
AGENT_TAG = "lifeboat-demo"
SLEEPTIME_AGENT = 3
SECRET_AGENT = 1
SECRET_KEY = "LIFEBOAT_API_TOKEN"
SECRET_VALUE = "lb-secret-token-0001"
CONVERSATION_AGENT = 2
CRASH_FIRST_CALL_AGENT = 18
CRASH_AFTER_TOOL_AGENT = 19
TEAM_BLOCK_AGENTS = range(0, 10)
PROJECT_BLOCK_AGENTS = range(5, 15)
TOOL_AGENTS = range(0, 5)
TOOL_CALLING_AGENTS = range(0, 1)  # a sandboxed tool call costs ~8 s
REST_ARCHIVAL_AGENTS = range(0, 10)
ARCHIVAL_TOOL_AGENTS = range(10, 13)
FOLDER_AGENTS = range(0, 7)
IDENTITY_AGENTS = range(0, 9)
FOLDER_NAME = "lb-handbook"
FILE_NAME = "handbook.txt"
CUSTOM_TOOL_NAME = "lookup_order"
WORKERS = 2

CUSTOM_TOOL_SOURCE = '''
def lookup_order(order_id: str) -> str:
    """Look up the shipping status of an order.

    Args:
        order_id (str): The order identifier, e.g. "A-17".

    Returns:
        str: A one-line status for the order.
    """
    return f"order {order_id}: shipped on day {sum(map(ord, order_id)) % 28 + 1}"
'''

HANDBOOK_TEXT = "\n".join(
    f"Section {n}. The lifeboat handbook says rule {n}: back up nightly, restore monthly, "
    f"and verify every restore with a drill (paragraph {n} of 30)."
    for n in range(1, 31)
)


def agent_name(index: int) -> str:
    return f"lb-agent-{index:02d}"


@dataclass
class Shared:
    """Org-level objects created before the agents."""

    blocks: dict[str, str] = field(default_factory=dict)  # label -> block id
    tool_id: str = ""
    identities: list[dict[str, Any]] = field(default_factory=list)
    folder_id: str = ""
    file_id: str = ""


# -- shared objects ---------------------------------------------------------------------------------
def create_shared(server: LettaServer) -> Shared:
    shared = Shared()
    for label, value in (
        ("team", "Team handbook: we are the lifeboat crew. Standup at 09:00 UTC."),
        ("project", "Project status: backups green, restore drill scheduled for Friday."),
    ):
        block = server.post(
            "/v1/blocks/", {"label": label, "value": value, "description": f"shared {label} notes"}
        )
        shared.blocks[label] = block["id"]
    tool = server.post("/v1/tools/", {"source_code": CUSTOM_TOOL_SOURCE, "tags": [AGENT_TAG]})
    shared.tool_id = tool["id"]
    for n, name in enumerate(("Ada Lovelace", "Grace Hopper", "Edsger Dijkstra")):
        identity = server.post(
            "/v1/identities/",
            {"identifier_key": f"lb-user-{n}", "name": name, "identity_type": "user"},
        )
        shared.identities.append({"id": identity["id"], "identifier_key": f"lb-user-{n}", "name": name})
    shared.folder_id, shared.file_id = _create_folder(server)
    return shared


def _create_folder(server: LettaServer) -> tuple[str, str]:
    folder = server.post(
        "/v1/folders/",
        {"name": FOLDER_NAME, "description": "The lifeboat handbook", "embedding": EMBEDDING_HANDLE},
    )
    files = {"file": (FILE_NAME, HANDBOOK_TEXT.encode(), "text/plain")}
    uploaded = server.request("POST", f"/v1/folders/{folder['id']}/upload", files=files)
    _wait(lambda: _file_done(server, folder["id"], uploaded["id"]), 120, "file processing")
    return folder["id"], uploaded["id"]


def _file_done(server: LettaServer, folder_id: str, file_id: str) -> bool:
    for meta in server.get(f"/v1/folders/{folder_id}/files"):
        if meta["id"] == file_id:
            if meta.get("processing_status") == "error":
                raise SandboxError(f"file processing failed: {meta.get('error_message')}")
            return bool(meta.get("processing_status") == "completed")
    return False


# -- agents -----------------------------------------------------------------------------------------
def agent_body(index: int, shared: Shared) -> dict[str, Any]:
    """The create-agent request for agent ``index`` (fixed texts, shared objects by id)."""
    body: dict[str, Any] = {
        "name": agent_name(index),
        "description": f"Lifeboat test agent number {index}",
        "model": LLM_HANDLE,
        "embedding": EMBEDDING_HANDLE,
        "tags": [AGENT_TAG, f"team-{index % 3}"],
        "metadata": {"lifeboat_index": index},
        "memory_blocks": [
            {"label": "human", "value": f"The user of agent {index} is called User{index}."},
            {"label": "persona", "value": f"I am agent {index}, a helpful assistant of the lifeboat crew."},
        ],
        "block_ids": [
            block_id
            for label, members in (("team", TEAM_BLOCK_AGENTS), ("project", PROJECT_BLOCK_AGENTS))
            if index in members
            for block_id in [shared.blocks[label]]
        ],
    }
    if index in TOOL_AGENTS:
        body["tool_ids"] = [shared.tool_id]
    if index in ARCHIVAL_TOOL_AGENTS:
        body["tools"] = ["archival_memory_insert", "archival_memory_search"]
    if index in IDENTITY_AGENTS:
        body["identity_ids"] = [shared.identities[index % len(shared.identities)]["id"]]
    if index == SECRET_AGENT:
        body["secrets"] = {SECRET_KEY: SECRET_VALUE}
    if index == SLEEPTIME_AGENT:
        body["enable_sleeptime"] = True
    return body


def create_agents(server: LettaServer, shared: Shared) -> list[dict[str, Any]]:
    agents = [server.post("/v1/agents/", agent_body(i, shared)) for i in range(AGENT_COUNT)]
    for index in FOLDER_AGENTS:
        server.patch(f"/v1/agents/{agents[index]['id']}/folders/attach/{shared.folder_id}", {})
    for index in REST_ARCHIVAL_AGENTS:
        for n in range(2):
            server.post(
                f"/v1/agents/{agents[index]['id']}/archival-memory",
                {
                    "text": f"Archived fact {n} of agent {index}: the crew met on day {index + n}.",
                    "tags": ["fact"],
                },
            )
    return agents


# -- conversation turns -----------------------------------------------------------------------------
def _directive(tool: str, **args: Any) -> str:
    return f"[[{tool} {json.dumps(args)}]]"


def turns_for(index: int) -> list[tuple[str, str]]:
    """(endpoint kind, user text) for agent ``index``; kinds: blocking, stream, async."""
    first = f"Hello, I am User{index}. " + _directive(
        "memory_insert", label="human", new_string=f"User{index} prefers topic {index % 5}."
    )
    if index % 2:
        second = "Please sound friendlier. " + _directive(
            "memory_replace",
            label="persona",
            old_string="a helpful assistant",
            new_string="a very helpful assistant",
        )
    else:
        second = f"What is on the agenda for team {index % 3} today?"
    if index in TOOL_CALLING_AGENTS:
        third = "Where is my order? " + _directive(CUSTOM_TOOL_NAME, order_id=f"A-{index}")
    elif index in ARCHIVAL_TOOL_AGENTS:
        third = "Remember this for later. " + _directive(
            "archival_memory_insert",
            content=f"Agent {index} learned that drills build trust.",
            tags=["learned"],
        )
    else:
        third = "Thanks, please summarize our chat."
    turns = [("blocking", first), ("stream", second), ("async", third)]
    if index == SLEEPTIME_AGENT:
        turns += [("blocking", f"Extra turn {n} for the sleeptime agent.") for n in range(2)]
    return turns


def send_turn(server: LettaServer, agent_id: str, kind: str, text: str) -> None:
    messages = {"messages": [{"role": "user", "content": text}]}
    if kind == "blocking":
        server.post(f"/v1/agents/{agent_id}/messages", messages)
    elif kind == "stream":
        events = server.stream(f"/v1/agents/{agent_id}/messages/stream", {**messages, "stream_tokens": True})
        if not any(e.get("message_type") == "stop_reason" for e in events):
            raise SandboxError(f"stream to {agent_id} ended without a stop_reason")
    else:
        run = server.post(f"/v1/agents/{agent_id}/messages/async", messages)
        _wait(lambda: _run_finished(server, run["id"]), 120, f"async run {run['id']}")


def _run_finished(server: LettaServer, run_id: str) -> bool:
    return server.get(f"/v1/runs/{run_id}")["status"] in ("completed", "failed", "cancelled")


def converse(server: LettaServer, agents: list[dict[str, Any]]) -> None:
    """Every agent's turns, agents in parallel (each agent's turns in order)."""

    def one(index: int) -> None:
        for kind, text in turns_for(index):
            send_turn(server, agents[index]["id"], kind, text)

    indices = [i for i in range(AGENT_COUNT) if i not in (CRASH_FIRST_CALL_AGENT, CRASH_AFTER_TOOL_AGENT)]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, indices))
    for index in (CRASH_FIRST_CALL_AGENT, CRASH_AFTER_TOOL_AGENT):
        send_turn(server, agents[index]["id"], "blocking", turns_for(index)[0][1])


def named_conversation(server: LettaServer, agent_id: str) -> str:
    conversation = server.post(
        f"/v1/conversations/?agent_id={agent_id}", {"summary": "Support thread about backups"}
    )
    for text in ("Can we talk about backups in this thread?", "Great, and restores too?"):
        # Streaming on purpose: with streaming=false, 0.16.8 leaves the run 'created' forever.
        events = server.stream(
            f"/v1/conversations/{conversation['id']}/messages",
            {"messages": [{"role": "user", "content": text}]},
        )
        if not any(e.get("message_type") == "stop_reason" for e in events):
            raise SandboxError(f"conversation {conversation['id']} stream ended without a stop_reason")
    return str(conversation["id"])


# -- the crash --------------------------------------------------------------------------------------
def crash_mid_step(server: LettaServer, llm: FakeLLM, agents: list[dict[str, Any]]) -> None:
    """Leave two requests mid-step: start them, wait until both LLM calls sleep, SIGKILL the server."""
    first = agents[CRASH_FIRST_CALL_AGENT]["id"]
    after_tool = agents[CRASH_AFTER_TOOL_AGENT]["id"]
    jobs = [
        (first, "blocking", "This one will never finish. [[sleep 600]]"),
        (
            after_tool,
            "stream",
            "Note this, then think slowly. "
            + _directive("memory_insert", label="human", new_string="Crash witness note.")
            + " [[sleep 600]]",
        ),
    ]
    before = llm.sleepers
    threads = [threading.Thread(target=_swallow, args=(server, *job), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    if not llm.wait_for_sleepers(before + len(jobs), timeout=120):
        raise SandboxError("the crash requests never reached the fake LLM")
    time.sleep(1.0)  # let the server commit what precedes the LLM call
    server.kill()
    for thread in threads:
        thread.join(timeout=30)


def _swallow(server: LettaServer, agent_id: str, kind: str, text: str) -> None:
    """Send a turn whose connection will die with the server; the error is expected."""
    with contextlib.suppress(Exception):
        send_turn(server, agent_id, kind, text)


# -- waiting ----------------------------------------------------------------------------------------
def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise SandboxError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_quiet(admin_dsn: str, timeout: float = 120) -> None:
    """Wait until no run is active (background sleeptime runs, file embedding) before the crash."""

    def quiet() -> bool:
        with psycopg.connect(admin_dsn) as conn:
            row = conn.execute("SELECT count(*) FROM runs WHERE status IN ('created', 'running')").fetchone()
        return row is not None and row[0] == 0

    _wait(quiet, timeout, "active runs to finish")


# -- the whole thing --------------------------------------------------------------------------------
def populate(server: LettaServer, llm: FakeLLM, admin_dsn: str) -> dict[str, Any]:
    """Build the deployment through ``server``; returns raw ids (see deployment.collect_facts)."""
    timings: dict[str, float] = {}

    def phase(name: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = fn()
        timings[name] = round(time.monotonic() - started, 2)
        return result

    shared: Shared = phase("shared", lambda: create_shared(server))
    agents: list[dict[str, Any]] = phase("agents", lambda: create_agents(server, shared))
    phase("turns", lambda: converse(server, agents))
    conversation_id = phase(
        "conversation", lambda: named_conversation(server, agents[CONVERSATION_AGENT]["id"])
    )
    phase("quiesce", lambda: wait_quiet(admin_dsn))
    phase("crash", lambda: crash_mid_step(server, llm, agents))
    return {
        "agents": agents,
        "shared": shared,
        "conversation_id": conversation_id,
        "timings": timings,
    }
