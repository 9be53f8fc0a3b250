"""The real Letta Code (pinned, installed by lifeboat's sandbox) reads what the writer produces.

No database here: a small synthetic agent is written and Letta Code's own commands must see it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lc_samples import AGENT_ID, DEEP_WORD, agent
from lc_testing import LettaCode

from lifeboat.letta_code import LETTA_CODE_VERSION, layout, writer
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_code_env import LettaCodeEnv, ensure_letta_code_env


@pytest.fixture(scope="module")
def letta_code_env() -> LettaCodeEnv:
    return ensure_letta_code_env()


def test_the_pinned_version_is_installed(letta_code_env: LettaCodeEnv) -> None:
    assert letta_code_env.version_line() == f"{LETTA_CODE_VERSION} (Letta Code)"


def test_letta_code_lists_searches_and_runs_a_turn(letta_code_env: LettaCodeEnv, tmp_path: Path) -> None:
    backend = tmp_path / "backend"
    writer.build_agent(agent(), backend)
    code = LettaCode(letta_code_env, backend, tmp_path / "home")
    local_id = layout.local_agent_id(AGENT_ID)
    listed = code.agents()
    assert [(a["id"], a["name"]) for a in listed] == [(local_id, "sample-agent")]
    files = {
        f["path"] for f in code.json("memory", "tokens", "--agent", local_id, "--format", "json")["files"]
    }
    assert files == {"MEMORY.md", "human.md", "persona.md"}
    found = code.json("messages", "search", "--query", DEEP_WORD, "--agent", local_id)
    assert [m["content"][0]["text"] for m in found] == [f"question 1 about {DEEP_WORD}"]
    with FakeLLM() as llm:
        code.connect(llm)
        result = code.json(
            "-p", "hello again", "--agent", local_id, "--conversation", "default",
            "-m", "openai-compatible/lifeboat-fake-llm", "--output-format", "json",
        )  # fmt: skip
        chats = [request for kind, request in llm.requests if kind == "chat"]
    assert result["is_error"] is False and result["conversation_id"] == "default"
    system = chats[-1]["messages"][0]["content"]
    assert "I am the sample persona." in system and "The user likes tea." in system
    history = [m.get("content") for m in chats[-1]["messages"][1:]]
    assert "answer 29" in history and "answer 1" not in history  # the context window, not all history
