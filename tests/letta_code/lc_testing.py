"""Helpers: run the real Letta Code (pinned, from the project's cached venv) on a backend directory,
and read what the database holds for comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from lifeboat.letta_code import layout
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


def transcript(backend: Path, agent_id: str, conversation_id: str | None = None) -> list[dict[str, Any]]:
    """The pi messages of one conversation's transcript, in file order."""
    folder = backend / layout.conversation_dir(conversation_id, agent_id)
    path = folder / "messages.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [row["message"] for row in rows if row.get("type") == "message"]


def pi_texts(message: dict[str, Any]) -> list[str]:
    return [part["text"] for part in message["content"] if part.get("type") == "text"]


def db_rows(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def db_messages(dsn: str, agent_id: str) -> list[tuple[str, str | None, str, list[str]]]:
    """(id, conversation id, role, text parts) of every message of the agent, in sequence order."""
    rows = db_rows(
        dsn,
        "SELECT id, to_jsonb(m) ->> 'conversation_id', role, content::text FROM messages m WHERE agent_id = %s ORDER BY sequence_id",
        (agent_id,),
    )
    result = []
    for ident, conversation, role, content in rows:
        parts = json.loads(content) if content else []
        texts = [p["text"] for p in parts if p.get("type") == "text" and p.get("text") is not None]
        result.append((ident, conversation, role, texts))
    return result
