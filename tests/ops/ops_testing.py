"""Helpers for the operations tests: repositories, CLI runs, database comparisons."""

from __future__ import annotations

from typing import Any

import psycopg
from dbcompare import normalized_schema, table_digests
from support import FAST_KDF, LIFEBOAT, PASSPHRASE, cli, new_repo

# re-exported for the ops tests: the shared helpers live in tests/support.py and tests/dbcompare.py
__all__ = ["FAST_KDF", "LIFEBOAT", "PASSPHRASE", "cli", "new_repo", "normalized_schema", "table_digests"]


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
