"""Database helpers for the agent-file tests: content hashes, row snapshots, API views."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from dbcompare import table_digests
from psycopg.rows import dict_row
from psycopg.types.json import Json
from psycopg.types.string import TextLoader

from lifeboat.sandbox.letta_server import LettaServer


def table_hashes(dsn: str) -> dict[str, str]:
    """md5 of every table's rows (text form, sorted) in the connection's current schema (Letta's)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    schema = row[0] if row else "letta"
    return {table: digest for table, (_count, digest) in table_digests(dsn, schema).items()}


def rows(dsn: str, query: str, params: Any = None, *, json_text: bool = False) -> list[dict[str, Any]]:
    """Rows as dicts; ``json_text`` keeps json columns as their stored text (JSON null != SQL NULL)."""
    with psycopg.connect(dsn) as conn:
        if json_text:
            conn.adapters.register_loader("json", TextLoader)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return list(cur.fetchall())


def agent_view(server: LettaServer, agent_id: str) -> dict[str, Any]:
    """What the API shows of an agent: blocks, tools, in-context messages, files, folders, tags."""
    agent = server.get(f"/v1/agents/{agent_id}")
    blocks = sorted(
        (b["label"], b["value"], b["limit"], b.get("read_only"), b.get("description"))
        for b in agent["memory"]["blocks"]
    )
    tools = sorted(t["name"] for t in agent["tools"])
    messages = rows_for_messages(server, agent)
    files = sorted(
        (f["file_name"], f["is_open"], f.get("visible_content"))
        for f in server.get(f"/v1/agents/{agent_id}/files", limit=100)["files"]
    )
    folders = sorted(s["name"].split("_")[0] for s in agent.get("sources") or [])
    return {
        "blocks": blocks,
        "tools": tools,
        "messages": messages,
        "files": files,
        "folders": folders,
        "tags": sorted(agent.get("tags") or []),
        "system": agent["system"],
        "agent_type": agent["agent_type"],
    }


def rows_for_messages(server: LettaServer, agent: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The in-context messages in order, as (role, content json) — ids differ between copies."""
    listed = server.get(f"/v1/agents/{agent['id']}/messages", limit=1000)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for message in listed:
        by_id.setdefault(message["id"], []).append(message)
    result = []
    for message_id in agent.get("message_ids") or []:
        for shown in by_id.get(message_id, []):
            result.append((shown["message_type"], _content(shown)))
    return result


def _content(message: dict[str, Any]) -> str:
    keep = {
        k: v
        for k, v in message.items()
        if k not in {"id", "date", "otid", "sender_id", "step_id", "run_id", "seq_id", "is_err", "created_at"}
    }
    return json.dumps(keep, sort_keys=True, default=str)


# Columns that hold ids of rows an import creates, or times: they differ between two imports.
VOLATILE = {
    "id", "created_at", "updated_at", "last_accessed_at", "sequence_id", "agent_id", "block_id", "file_id",
    "source_id", "group_id", "message_ids", "manager_agent_id", "agent_ids", "conversation_id", "archive_id",
    "passage_id", "identity_id", "otid", "value_enc", "last_processed_message_id", "tool_id",
}  # fmt: skip

AGENT_TABLES = {
    "agents": "SELECT * FROM agents WHERE id = ANY(%(ids)s)",
    "agents_tags": "SELECT * FROM agents_tags WHERE agent_id = ANY(%(ids)s)",
    "tools_agents": "SELECT * FROM tools_agents WHERE agent_id = ANY(%(ids)s)",
    "tools": "SELECT t.* FROM tools t WHERE t.id IN (SELECT tool_id FROM tools_agents WHERE agent_id = ANY(%(ids)s))",
    "blocks_agents": "SELECT * FROM blocks_agents WHERE agent_id = ANY(%(ids)s)",
    "block": "SELECT b.* FROM block b WHERE b.id IN (SELECT block_id FROM blocks_agents WHERE agent_id = ANY(%(ids)s))",
    "blocks_tags": "SELECT bt.* FROM blocks_tags bt JOIN blocks_agents ba ON ba.block_id = bt.block_id WHERE ba.agent_id = ANY(%(ids)s)",
    "sources_agents": "SELECT * FROM sources_agents WHERE agent_id = ANY(%(ids)s)",
    "sources": "SELECT s.* FROM sources s JOIN sources_agents sa ON sa.source_id = s.id WHERE sa.agent_id = ANY(%(ids)s)",
    "files": "SELECT f.* FROM files f JOIN files_agents fa ON fa.file_id = f.id WHERE fa.agent_id = ANY(%(ids)s)",
    "file_contents": "SELECT c.* FROM file_contents c JOIN files_agents fa ON fa.file_id = c.file_id WHERE fa.agent_id = ANY(%(ids)s)",
    "files_agents": "SELECT * FROM files_agents WHERE agent_id = ANY(%(ids)s)",
    "agent_environment_variables": "SELECT * FROM agent_environment_variables WHERE agent_id = ANY(%(ids)s)",
    "messages": "SELECT * FROM messages WHERE agent_id = ANY(%(ids)s) ORDER BY sequence_id",
    "groups": "SELECT * FROM groups WHERE manager_agent_id = ANY(%(ids)s)",
    "groups_agents": "SELECT * FROM groups_agents WHERE agent_id = ANY(%(ids)s)",
    "identities_agents": "SELECT * FROM identities_agents WHERE agent_id = ANY(%(ids)s)",
    "archives_agents": "SELECT * FROM archives_agents WHERE agent_id = ANY(%(ids)s)",
}


def agent_rows(dsn: str, agent_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The rows an import creates for ``agent_ids``, minus volatile columns, in a stable order."""
    result = {}
    for table, query in AGENT_TABLES.items():
        found = rows(dsn, query, {"ids": agent_ids}, json_text=True)
        cleaned = [{k: v for k, v in row.items() if k not in VOLATILE} for row in found]
        if table != "messages":
            cleaned.sort(key=lambda row: json.dumps(row, sort_keys=True, default=str))
        result[table] = cleaned
    return result


def row_differences(
    left: dict[str, list[dict[str, Any]]], right: dict[str, list[dict[str, Any]]]
) -> list[str]:
    """Human-readable column differences between two agent_rows() results."""
    found = []
    for table in left:
        a, b = left[table], right[table]
        if len(a) != len(b):
            found.append(f"{table}: {len(a)} rows vs {len(b)}")
            continue
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            for column in sorted(set(x) | set(y)):
                if x.get(column) != y.get(column):
                    found.append(
                        f"{table}[{index}].{column}: {str(x.get(column))[:120]!r} vs {str(y.get(column))[:120]!r}"
                    )
    return found


def evict_history(dsn: str, agent_id: str, keep: int = 2) -> list[str]:
    """Leave the system message and the last ``keep`` messages in context, as compaction does."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT message_ids FROM agents WHERE id = %s", [agent_id]).fetchone()
        assert row is not None and len(row[0]) > keep + 1
        kept = [row[0][0], *row[0][-keep:]]
        conn.execute("UPDATE agents SET message_ids = %s WHERE id = %s", [Json(kept), agent_id])
    return kept
