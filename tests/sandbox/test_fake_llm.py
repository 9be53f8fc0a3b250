"""The fake OpenAI-compatible endpoint, over real HTTP (no Letta server needed)."""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Iterator

import httpx
import pytest

from lifeboat.sandbox.fake_llm import (
    CHAT_MODEL,
    FAKE_LLM_BASE_URL,
    FakeLLM,
    embed,
    parse_directives,
    plan_reply,
)

TOOLS = [{"type": "function", "function": {"name": n}} for n in ("memory_insert", "send_message")]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def chat(
    text: str, *history: dict[str, object], tools: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": text}, *history],
        "tools": tools or [],
    }


def test_directives_drive_tool_calls_in_order() -> None:
    request = chat('hi [[memory_insert {"label": "human", "new_string": "x"}]] [[sleep 3]]', tools=TOOLS)
    first = plan_reply(request)
    assert (first.tool_name, first.tool_args, first.sleep) == (
        "memory_insert",
        {"label": "human", "new_string": "x"},
        0,
    )
    request["messages"] += [{"role": "assistant", "content": None}, {"role": "tool", "content": "ok"}]  # type: ignore[operator]
    second = plan_reply(request)
    assert (second.tool_name, second.sleep) == ("send_message", 3.0)
    assert second.tool_args == {"message": "Noted: hi"}


def test_without_send_message_the_answer_is_plain_content() -> None:
    reply = plan_reply(chat("hello [[not_offered {}]]"))
    assert reply.tool_name is None and reply.content == "Noted: hello"


def test_escaped_directives_and_garbage_are_tolerated() -> None:
    assert parse_directives('[[memory_insert {\\"label\\": \\"human\\"}]]')[0].args == {"label": "human"}
    assert parse_directives("[[memory_insert {not json}]]") == []


def test_models_and_json_completion(llm: FakeLLM) -> None:
    models = httpx.get(f"{llm.base_url}/models").json()
    assert CHAT_MODEL in [m["id"] for m in models["data"]]
    response = httpx.post(
        f"{llm.base_url}/chat/completions", json=chat('[[memory_insert {"label": "h"}]]', tools=TOOLS)
    )
    assert response.headers["connection"] == "close"
    call = response.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "memory_insert"
    assert json.loads(call["function"]["arguments"]) == {"label": "h"}


def test_streaming_completion_reassembles(llm: FakeLLM) -> None:
    body = {**chat("stream me", tools=TOOLS), "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{llm.base_url}/chat/completions", json=body) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    arguments = "".join(
        call["function"].get("arguments", "")
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls", [])
    )
    assert json.loads(arguments) == {"message": "Noted: stream me"}
    assert chunks[-1]["usage"]["total_tokens"] > 0


def test_embeddings_float_and_base64_are_deterministic(llm: FakeLLM) -> None:
    floats = httpx.post(
        f"{llm.base_url}/embeddings", json={"input": ["a", "b"], "model": "text-embedding-3-small"}
    ).json()
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 1536 and vector == pytest.approx(embed("a"))
    packed = httpx.post(
        f"{llm.base_url}/embeddings", json={"input": "a", "encoding_format": "base64", "dimensions": 8}
    ).json()
    decoded = struct.unpack("<8f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx(embed("a", 8), rel=1e-6)
    assert abs(sum(v * v for v in embed("a")) - 1) < 1e-9


def test_reachable_as_a_proxy_under_the_fixed_name(llm: FakeLLM) -> None:
    with httpx.Client(proxy=llm.proxy_url) as client:
        models = client.get(f"{FAKE_LLM_BASE_URL}/models").json()
    assert models["object"] == "list"


def test_sleep_is_counted_and_woken_by_stop() -> None:
    fake = FakeLLM().start()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            httpx.post(f"{fake.base_url}/chat/completions", json=chat("[[sleep 60]]"), timeout=30).status_code
        )
    )
    thread.start()
    assert fake.wait_for_sleepers(1, timeout=10)
    fake.stop()
    thread.join(timeout=10)
    assert result == [200]


def test_fail_directive_answers_500(llm: FakeLLM) -> None:
    assert httpx.post(f"{llm.base_url}/chat/completions", json=chat("[[fail]]")).status_code == 500
