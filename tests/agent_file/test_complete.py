"""``--complete`` round trip through lifeboat: every message and passage comes back, row for row.

Every agent of the cached deployment is exported into one complete file and imported into the
same database (new ids everywhere); each original row is then compared with its copy, with ids
translated through the two id maps. ``step_id``/``run_id`` are not carried (runs are not part
of an agent file) and ``sequence_id`` is renumbered, so neither is compared; order is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lifeboat.letta.agent_file_import import Options
from lifeboat.ops.export import export_agents
from lifeboat.ops.import_af import import_agent_file
from lifeboat.sandbox.deployment import LettaDatabase

from .dbtools import evict_history, rows

MESSAGE_COLUMNS = (
    "role, text, content::text, model, name, tool_calls::text, tool_call_id, otid, tool_returns::text, sender_id,"
    " batch_item_id, is_err, approval_request_id, approve, denial_reason, approvals::text, created_at, updated_at,"
    " is_deleted, organization_id, group_id, conversation_id"
)
PASSAGE_COLUMNS = (
    "text, embedding::text, embedding_config::text, metadata_::text, tags::text, created_at, is_deleted"
)


def translate(value: Any, old_to_new: dict[str, str]) -> Any:
    return old_to_new.get(value, value) if isinstance(value, str) else value


def test_complete_round_trip_is_lossless(letta_db: LettaDatabase, tmp_path: Path) -> None:
    evict_history(letta_db.dsn, letta_db.facts["agent_ids"]["lb-agent-05"])  # some out-of-context history
    path = tmp_path / "everything.af"
    exported = export_agents(letta_db.dsn, None, path, complete=True).files[0]
    imported = import_agent_file(path, letta_db.dsn, options=Options(allow_custom_tools=True))
    # original database id -> new database id, through the file ids
    old_to_new = {
        old: imported.id_map[file_id]
        for file_id, old in exported.id_map.items()
        if file_id in imported.id_map
    }
    originals = [a["id"] for a in letta_db.facts["agents"]]
    assert set(originals) <= set(old_to_new)
    for agent_id in originals:
        _compare_agent(letta_db.dsn, agent_id, old_to_new[agent_id], old_to_new)
    _compare_passages(letta_db.dsn, originals, old_to_new)


def _compare_agent(dsn: str, old: str, new: str, old_to_new: dict[str, str]) -> None:
    query = f"SELECT id, {MESSAGE_COLUMNS} FROM messages WHERE agent_id = %s AND NOT is_deleted ORDER BY sequence_id"
    before, after = rows(dsn, query, [old]), rows(dsn, query, [new])
    assert len(before) == len(after) > 0, old
    for a, b in zip(before, after, strict=True):
        assert old_to_new[a.pop("id")] == b.pop("id")
        expected = {k: translate(v, old_to_new) for k, v in a.items()}
        assert expected == b, f"message of {old}"
    agent_query = (
        "SELECT message_ids, enable_sleeptime, hidden, compaction_settings::text, tool_rules::text,"
        " llm_config::text, embedding_config::text, system, last_stop_reason, created_at, max_files_open,"
        " per_file_view_window_char_limit, timezone, metadata_::text, response_format::text, description,"
        " message_buffer_autoclear, agent_type FROM agents WHERE id = %s"
    )
    (agent_before,), (agent_after,) = rows(dsn, agent_query, [old]), rows(dsn, agent_query, [new])
    agent_before["message_ids"] = [old_to_new[m] for m in agent_before["message_ids"]]
    assert agent_before == agent_after
    for table, key in (
        ("identities_agents", "identity_id"),
        ("archives_agents", "archive_id"),
        ("tools_agents", "tool_id"),
        ("blocks_agents", "block_id"),
        ("sources_agents", "source_id"),
    ):
        links = f"SELECT {key} AS ref FROM {table} WHERE agent_id = %s"
        assert sorted(translate(r["ref"], old_to_new) for r in rows(dsn, links, [old])) == sorted(
            r["ref"] for r in rows(dsn, links, [new])
        ), table
    conversations = "SELECT c.summary, m.position, m.in_context, m.message_id FROM conversations c JOIN conversation_messages m ON m.conversation_id = c.id WHERE c.agent_id = %s AND NOT m.is_deleted ORDER BY m.position"
    members_before = [
        {**r, "message_id": old_to_new[r["message_id"]]} for r in rows(dsn, conversations, [old])
    ]
    assert members_before == rows(dsn, conversations, [new])


def _compare_passages(dsn: str, originals: list[str], old_to_new: dict[str, str]) -> None:
    archives = rows(
        dsn, "SELECT DISTINCT archive_id FROM archives_agents WHERE agent_id = ANY(%s)", [originals]
    )
    assert archives, "the deployment has archival passages"
    total = 0
    for row in archives:
        old_archive = row["archive_id"]
        query = f"SELECT id, {PASSAGE_COLUMNS} FROM archival_passages WHERE archive_id = %s ORDER BY created_at, id"
        before = {old_to_new[r.pop("id")]: r for r in rows(dsn, query, [old_archive])}
        after = {r.pop("id"): r for r in rows(dsn, query, [old_to_new[old_archive]])}
        assert before == after
        tags = "SELECT passage_id, tag FROM passage_tags WHERE archive_id = %s ORDER BY passage_id, tag"
        assert sorted(
            (old_to_new[r["passage_id"]], r["tag"]) for r in rows(dsn, tags, [old_archive])
        ) == sorted((r["passage_id"], r["tag"]) for r in rows(dsn, tags, [old_to_new[old_archive]]))
        total += len(before)
    assert total > 0
