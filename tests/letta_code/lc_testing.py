"""Helpers: run the real Letta Code (pinned, from the project's cached venv) on a backend directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_code_env import LettaCodeEnv


class LettaCode:
    """``letta --backend local …`` with a scratch HOME, pointed at one backend directory."""

    def __init__(self, env: LettaCodeEnv, backend: Path, home: Path) -> None:
        self.env, self.backend, self.home = env, backend, home

    def run(self, *args: str, timeout: float = 300) -> str:
        done = self.env.run(*args, home=self.home, backend_dir=self.backend, timeout=timeout)
        assert done.returncode == 0, f"letta {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args))

    def agents(self) -> list[dict[str, Any]]:
        return list(self.json("agents", "list", "--limit", "1000")["items"])

    def connect(self, llm: FakeLLM) -> None:
        """Register the fake LLM as Letta Code's OpenAI-compatible provider (kept in the backend dir)."""
        self.run("connect", "openai-compatible", "--base-url", llm.base_url, "--api-key", "fake")
