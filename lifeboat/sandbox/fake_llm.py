"""A deterministic, OpenAI-compatible LLM + embeddings endpoint for driving the real Letta server.

Served by the stdlib in a background thread on 127.0.0.1. Endpoints: ``GET /v1/models``,
``POST /v1/chat/completions`` (JSON or SSE streaming, with tool calls) and
``POST /v1/embeddings`` (float or base64; deterministic unit vectors).

Behaviour is driven by directives in the latest user message, ``[[name {json args}]]``:

* ``[[memory_insert {"label": "human", "new_string": "likes tea"}]]`` — call that tool (any tool
  the request offers: memory_insert, memory_replace, archival_memory_insert, a custom tool...);
  several directives are issued one per LLM call, in order, each after the previous tool result;
* ``[[sleep 600]]`` — this LLM call sleeps (to kill the Letta server mid-step); ``stop()`` wakes it;
* ``[[fail]]`` — answer HTTP 500.

With no (remaining) directive the model answers: ``send_message`` when offered, else
``memory_finish_edits`` when offered (sleeptime agents), else plain assistant content.

Every response carries ``Connection: close``: with keep-alive, Letta's event loop once lost a
freshly opened Postgres socket that reused the fd of a just-closed LLM connection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_MODEL = "lifeboat-fake-llm"
#: The endpoint Letta is told about (OPENAI_BASE_URL) and stores in every agent's llm_config and
#: embedding_config. It is a fixed, unresolvable name reached through HTTP_PROXY pointing at the
#: FakeLLM, so a dump built in one process works with any later FakeLLM on any port.
FAKE_LLM_BASE_URL = "http://fake-llm.lifeboat.test/v1"
EMBEDDING_MODELS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_EMBEDDING_DIM = 1536
_DIRECTIVE = re.compile(r"\[\[(\w+)\s*(.*?)\]\]", re.DOTALL)


@dataclass
class Directive:
    name: str
    args: dict[str, Any]


@dataclass
class Reply:
    """One assistant turn: either content or one tool call."""

    content: str | None = None
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)
    sleep: float = 0.0
    fail: bool = False


def parse_directives(text: str) -> list[Directive]:
    """``[[name {json}]]`` / ``[[sleep 5]]`` directives in order of appearance."""
    found = []
    for name, raw in _DIRECTIVE.findall(text):
        raw = raw.strip()
        if name == "sleep":
            found.append(Directive("sleep", {"seconds": float(raw or 600)}))
        elif not raw:
            found.append(Directive(name, {}))
        else:
            args = _loads_lenient(raw)
            if args is not None:
                found.append(Directive(name, args))
    return found


def _loads_lenient(raw: str) -> dict[str, Any] | None:
    """JSON args, also when the user text reached us JSON-escaped inside another JSON string."""
    for candidate in (raw, raw.replace('\\"', '"')):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else None
    return None


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _offered_tools(request: dict[str, Any]) -> set[str]:
    names = set()
    for tool in request.get("tools") or []:
        function = tool.get("function") or {}
        if "name" in function:
            names.add(function["name"])
    return names


def plan_reply(request: dict[str, Any]) -> Reply:
    """Decide the next assistant turn from the conversation so far (pure, deterministic)."""
    messages = request.get("messages") or []
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    user_text = _text_of(messages[last_user]) if last_user >= 0 else ""
    tool_results = sum(1 for m in messages[last_user + 1 :] if m.get("role") == "tool")
    offered = _offered_tools(request)
    sleep = 0.0
    pending: list[Directive] = []
    for directive in parse_directives(user_text):
        if directive.name == "fail":
            return Reply(fail=True)
        if directive.name == "sleep":
            if len(pending) == tool_results:
                sleep += directive.args["seconds"]
            continue
        if directive.name in offered:
            pending.append(directive)
    if tool_results < len(pending):
        step = pending[tool_results]
        return Reply(tool_name=step.name, tool_args=step.args, sleep=sleep)
    return _final_reply(user_text, offered, sleep)


def _final_reply(user_text: str, offered: set[str], sleep: float) -> Reply:
    plain = _DIRECTIVE.sub("", user_text).strip()
    answer = f"Noted: {plain[:120]}" if plain else "Done."
    if "send_message" in offered:
        return Reply(tool_name="send_message", tool_args={"message": answer}, sleep=sleep)
    if "memory_finish_edits" in offered:
        return Reply(tool_name="memory_finish_edits", tool_args={}, sleep=sleep)
    return Reply(content=answer, sleep=sleep)


def embed(text: str, dim: int = DEFAULT_EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector for ``text`` (same text, same vector, across processes)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vector = [rng.uniform(-1.0, 1.0) for _ in range(dim)]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def _usage(request: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(_text_of(m)) for m in request.get("messages") or []) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": 8, "total_tokens": prompt + 8}


def _tool_call(reply: Reply, call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": reply.tool_name, "arguments": json.dumps(reply.tool_args)},
    }


def completion_body(request: dict[str, Any], reply: Reply, serial: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_name:
        message["tool_calls"] = [_tool_call(reply, f"call_{serial:08d}")]
    return {
        "id": f"chatcmpl-{serial:08d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", CHAT_MODEL),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_name else "stop"}
        ],
        "usage": _usage(request),
    }


def completion_chunks(request: dict[str, Any], reply: Reply, serial: int) -> list[dict[str, Any]]:
    """The SSE chunks of a streamed completion (role, content or tool call, finish, usage)."""
    base = {
        "id": f"chatcmpl-{serial:08d}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", CHAT_MODEL),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if reply.tool_name:
        call = _tool_call(reply, f"call_{serial:08d}")
        arguments = call["function"]["arguments"]
        call["function"]["arguments"] = ""
        chunks.append(chunk({"tool_calls": [{"index": 0, **call}]}))
        for start in range(0, len(arguments), 32):
            piece = arguments[start : start + 32]
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, "tool_calls"))
    else:
        for word in (reply.content or "").split(" "):
            chunks.append(chunk({"content": word + " "}))
        chunks.append(chunk({}, "stop"))
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": _usage(request)})
    return chunks


def embeddings_body(request: dict[str, Any]) -> dict[str, Any]:
    inputs = request.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    model = request.get("model", "text-embedding-3-small")
    dim = int(request.get("dimensions") or EMBEDDING_MODELS.get(model, DEFAULT_EMBEDDING_DIM))
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embed(str(text), dim)
        value: Any = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = sum(len(str(t)) for t in texts) // 4 + 1
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connections under Letta's bursts
    fake: FakeLLM

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that went away (a SIGKILLed Letta server) are expected; stay quiet about them."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> str:
        """The request path, also when we are addressed as an HTTP proxy (absolute URI)."""
        path = self.path
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        return path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        if self._route() in ("/v1/models", "/models"):
            models = [CHAT_MODEL, *EMBEDDING_MODELS]
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "lifeboat"} for m in models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "invalid JSON"}})
            return
        path = self._route()
        if path.endswith("/chat/completions"):
            self._chat(request)
        elif path.endswith("/embeddings"):
            self.server.fake.record("embeddings", request)
            self._json(200, embeddings_body(request))
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, request: dict[str, Any]) -> None:
        fake = self.server.fake
        serial = fake.record("chat", request)
        reply = plan_reply(request)
        if reply.sleep:
            fake.note_sleeper()
            fake.wake.wait(reply.sleep)
        if reply.fail:
            self._json(500, {"error": {"message": "fake LLM failure requested", "type": "server_error"}})
        elif request.get("stream"):
            self._sse(completion_chunks(request, reply, serial))
        else:
            self._json(200, completion_body(request, reply, serial))

    def _json(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def _sse(self, chunks: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class FakeLLM:
    """The fake endpoint; use as a context manager or ``start()``/``stop()``.

    ``requests`` records ``(kind, request_json)`` for every call (bounded), ``sleeping`` is set
    and ``sleepers`` counts up when a ``[[sleep]]`` call starts waiting (to time a SIGKILL; see
    ``wait_for_sleepers``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_recorded: int = 2000) -> None:
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._serial = 0
        self._max_recorded = max_recorded
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.sleeping = threading.Event()
        self.sleepers = 0
        self._sleepers_changed = threading.Condition(self._lock)
        self.wake = threading.Event()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1`` (what OPENAI_BASE_URL takes)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def proxy_url(self) -> str:
        """What a Letta server's HTTP_PROXY must be to reach us as ``FAKE_LLM_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def record(self, kind: str, request: dict[str, Any]) -> int:
        with self._lock:
            self._serial += 1
            if len(self.requests) < self._max_recorded:
                self.requests.append((kind, request))
            return self._serial

    def note_sleeper(self) -> None:
        with self._sleepers_changed:
            self.sleepers += 1
            self.sleeping.set()
            self._sleepers_changed.notify_all()

    def wait_for_sleepers(self, count: int, timeout: float = 60.0) -> bool:
        """Block until ``count`` ``[[sleep]]`` calls (in total) are waiting; False on timeout."""
        with self._sleepers_changed:
            return self._sleepers_changed.wait_for(lambda: self.sleepers >= count, timeout)

    def start(self) -> FakeLLM:
        self.wake.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.wake.set()  # release sleeping calls
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
