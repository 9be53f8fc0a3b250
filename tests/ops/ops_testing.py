"""Helpers for the operations tests: repositories, CLI runs, database comparisons."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.repo.crypto import KdfParams
from lifeboat.repo.repository import Repository

PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
LIFEBOAT = [sys.executable, "-m", "lifeboat"]


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


def table_digests(dsn: str, schema: str = "letta") -> dict[str, tuple[int, str]]:
    """Row count and md5 of each table's rows in a stable order (content, not physical layout)."""
    digests = {}
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = %s ORDER BY 1",
                (schema,),
            )
        ]
        for table in tables:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) "
                    "FROM {} t"
                ).format(sql.Identifier(schema, table))
            ).fetchone()
            assert row is not None
            digests[table] = (row[0], row[1])
    return digests


_DROP_LINE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\('search_path'.*|\\(un)?restrict .*|)$")


def normalized_schema(pg_dump: str, dsn: str) -> str:
    """``pg_dump --schema-only`` without comments, SET lines, ``\\restrict`` lines and blank lines."""
    out = subprocess.run([pg_dump, "--schema-only", dsn], check=True, capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if not _DROP_LINE.match(line))


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
