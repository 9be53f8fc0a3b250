"""Helpers for the operations tests: repositories, CLI runs, database comparisons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from dbcompare import normalized_schema, table_digests

from lifeboat.repo.crypto import KdfParams
from lifeboat.repo.repository import Repository

PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
LIFEBOAT = [sys.executable, "-m", "lifeboat"]
__all__ = ["normalized_schema", "table_digests"]  # re-exported for the ops tests


def new_repo(location: str | Path) -> Repository:
    return Repository.init(location, PASSPHRASE, kdf=FAST_KDF)


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (exit codes and output as an operator sees them)."""
    full_env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, **(env or {})}
    return subprocess.run(
        [*LIFEBOAT, *args], capture_output=True, text=True, env=full_env, check=check, timeout=600
    )


def scalar(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def unresolved_message_ids(dsn: str) -> list[tuple[str, str]]:
    """(agent id, message id) of every agents.message_ids entry with no message row of that agent."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT a.id, e.mid FROM agents a, json_array_elements_text(a.message_ids) AS e(mid) "
            "WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.mid AND m.agent_id = a.id)"
        ).fetchall()
