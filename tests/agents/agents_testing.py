"""Helpers for the agent-restore tests: rows of one agent, digests outside a subgraph, CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from ops_testing import PASSPHRASE, cli
from psycopg import sql

# Columns that tie a row to the restored scope: a row whose value in one of them is one of the
# excluded ids belongs to the subgraph; everything else must not change.
SCOPE_COLUMNS = ("id", "agent_id", "block_id", "archive_id", "manager_agent_id", "conversation_id")


def tables(dsn: str, schema: str = "letta") -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
            )
        ]


def digests_outside(dsn: str, excluded: set[str], schema: str = "letta") -> dict[str, tuple[int, str]]:
    """Row count and md5 of every table's rows that touch none of ``excluded`` ids."""
    digests = {}
    with psycopg.connect(dsn) as conn:
        for table in tables(dsn, schema):
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                    (schema, table),
                )
            }
            keep = [
                sql.SQL("NOT coalesce(t.{}::text = ANY(%s), false)").format(sql.Identifier(c))
                for c in SCOPE_COLUMNS
                if c in columns
            ]
            where = sql.SQL(" AND ").join(keep) if keep else sql.SQL("true")
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) "
                "FROM {} t WHERE {}"
            ).format(sql.Identifier(schema, table), where)
            row = conn.execute(query, [list(excluded)] * len(keep)).fetchone()
            assert row is not None
            digests[table] = (row[0], row[1])
    return digests


def subgraph_ids(dsn: str, agent_ids: list[str]) -> set[str]:
    """The agents, their messages/runs/steps/conversations, exclusive blocks and archives (live)."""
    with psycopg.connect(dsn) as conn:
        ids = set(agent_ids)
        for table in ("messages", "runs", "steps", "conversations"):
            ids |= {
                r[0]
                for r in conn.execute(f"SELECT id FROM letta.{table} WHERE agent_id = ANY(%s)", (agent_ids,))
            }
        ids |= {
            r[0]
            for r in conn.execute(
                "SELECT block_id FROM letta.blocks_agents GROUP BY block_id "
                "HAVING bool_and(agent_id = ANY(%s)) AND bool_or(agent_id = ANY(%s))",
                (agent_ids, agent_ids),
            )
        }
        ids |= {
            r[0]
            for r in conn.execute(
                "SELECT archive_id FROM letta.archives_agents GROUP BY archive_id HAVING bool_and(agent_id = ANY(%s))",
                (agent_ids,),
            )
        }
    return ids


def agent_rows(dsn: str, agent_ids: list[str]) -> dict[str, list[str]]:
    """Every row (as text) of the agents' owned tables, blocks, archives and passages, by table."""
    queries = {
        "agents": "SELECT t::text FROM letta.agents t WHERE id = ANY(%(a)s)",
        "block": "SELECT t::text FROM letta.block t WHERE id IN (SELECT block_id FROM letta.blocks_agents WHERE agent_id = ANY(%(a)s))",
        "archival_passages": "SELECT t::text FROM letta.archival_passages t WHERE archive_id IN "
        "(SELECT archive_id FROM letta.archives_agents WHERE agent_id = ANY(%(a)s))",
        "groups": "SELECT t::text FROM letta.groups t WHERE manager_agent_id = ANY(%(a)s)",
    }
    for table in (
        "agents_tags", "agent_environment_variables", "messages", "conversations", "conversation_messages",
        "files_agents", "runs", "run_metrics", "steps", "step_metrics", "archives_agents", "blocks_agents",
        "tools_agents", "sources_agents", "identities_agents", "groups_agents",
    ):  # fmt: skip
        queries[table] = f"SELECT t::text FROM letta.{table} t WHERE agent_id = ANY(%(a)s)"
    with psycopg.connect(dsn) as conn:
        return {t: sorted(r[0] for r in conn.execute(q, {"a": agent_ids})) for t, q in queries.items()}  # type: ignore[call-overload]


def lifeboat_json(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``lifeboat --json ARGS``; the result and its decoded stdout (None if not JSON)."""
    result = cli("--json", *args, env=env)
    try:
        return result, json.loads(result.stdout)
    except ValueError:
        return result, None


def sequence_value(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT last_value FROM letta.message_seq_id").fetchone()
    assert row is not None
    return int(row[0])


DYING_RESTORE = Path(__file__).with_name("dying_restore.py")


def dying_restore(fail_after: int, how: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``lifeboat ARGS`` (a restore) whose applier fails (``how="error"``) or SIGKILLs itself
    (``how="kill"``) after ``fail_after`` tables are written (see dying_restore.py)."""
    env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE}
    command = [sys.executable, str(DYING_RESTORE), str(fail_after), how, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=600)
