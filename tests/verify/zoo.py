"""The corruption zoo: defects injected with SQL into a fresh copy of the real Letta deployment.

Each defect names the finding code verify must report for it and returns the ids it must list.
Injections run as the superuser; those that a constraint would refuse run with
``session_replication_role = replica`` (triggers, hence FK checks, off) — what a data-only
restore does — or drop the constraint, as a restore that lost its post-data section would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from lifeboat.letta import secrets

Conn = psycopg.Connection[Any]
ZOO_KEY = "zoo-encryption-key"


@dataclass(frozen=True)
class Defect:
    name: str
    code: str  # the finding code that must report it (and be the only new finding)
    table: str
    inject: Callable[[Conn, dict[str, Any]], list[str]]  # returns the ids the finding must list
    encryption_key: str | None = None
    also: tuple[
        str, ...
    ] = ()  # codes the injection unavoidably causes too (e.g. a constraint it had to drop)

    def __str__(self) -> str:
        return self.name


def one(conn: Conn, query: str, *params: Any) -> Any:
    row = conn.execute(query, params or None).fetchone()  # type: ignore[arg-type]
    assert row is not None, f"the fixture has no row for: {query}"
    return row[0] if len(row) == 1 else row


def _agent_with_context(conn: Conn, minimum: int = 3) -> tuple[str, list[str]]:
    agent_id, message_ids = one(
        conn,
        "SELECT id, message_ids::text FROM agents WHERE json_array_length(message_ids) >= %s "
        "AND agent_type NOT LIKE '%%sleeptime%%' ORDER BY id LIMIT 1",
        minimum,
    )
    return agent_id, json.loads(message_ids)


def _set_message_ids(conn: Conn, agent_id: str, message_ids: list[str]) -> None:
    conn.execute(
        "UPDATE agents SET message_ids = %s::json WHERE id = %s", (json.dumps(message_ids), agent_id)
    )


def dangling_message_id(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, ids = _agent_with_context(conn)
    _set_message_ids(conn, agent_id, [*ids, f"message-{uuid.uuid4()}"])
    return [agent_id]


def foreign_message_id(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, ids = _agent_with_context(conn)
    other = one(
        conn, "SELECT id FROM messages WHERE agent_id <> %s AND conversation_id IS NULL LIMIT 1", agent_id
    )
    _set_message_ids(conn, agent_id, [*ids, other])
    return [agent_id]


def duplicate_message_id(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, ids = _agent_with_context(conn)
    _set_message_ids(conn, agent_id, [*ids, ids[-1]])
    return [agent_id]


def system_not_first(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, ids = _agent_with_context(conn)
    _set_message_ids(conn, agent_id, [ids[1], ids[0], *ids[2:]])
    return [agent_id]


def message_ids_not_a_list(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, _ = _agent_with_context(conn)
    conn.execute("UPDATE agents SET message_ids = '{\"oops\": 1}'::json WHERE id = %s", (agent_id,))
    return [agent_id]


def group_member_row_lost(conn: Conn, facts: dict[str, Any]) -> list[str]:
    group_id, agent_id = one(conn, "SELECT group_id, agent_id FROM groups_agents ORDER BY group_id LIMIT 1")
    conn.execute("DELETE FROM groups_agents WHERE group_id = %s AND agent_id = %s", (group_id, agent_id))
    return [group_id]


def block_label_copy_differs(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, block_id = one(
        conn, "SELECT agent_id, block_id FROM blocks_agents ORDER BY agent_id, block_id LIMIT 1"
    )
    conn.execute("SET session_replication_role = replica")
    conn.execute(
        "UPDATE blocks_agents SET block_label = block_label || '_renamed' WHERE agent_id = %s AND block_id = %s",
        (agent_id, block_id),
    )
    return [f"{agent_id}/{block_id}"]


def passage_tag_row_lost(conn: Conn, facts: dict[str, Any]) -> list[str]:
    tag_id, passage_id = one(conn, "SELECT id, passage_id FROM passage_tags ORDER BY id LIMIT 1")
    conn.execute("DELETE FROM passage_tags WHERE id = %s", (tag_id,))
    return [passage_id]


def file_row_in_other_folder(conn: Conn, facts: dict[str, Any]) -> list[str]:
    row_id, org = one(conn, "SELECT fa.id, fa.organization_id FROM files_agents fa ORDER BY fa.id LIMIT 1")
    folder = f"source-{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO sources (id, name, embedding_config, vector_db_provider, organization_id) "
        "SELECT %s, 'zoo folder', embedding_config, vector_db_provider, %s FROM sources LIMIT 1",
        (folder, org),
    )
    conn.execute("UPDATE files_agents SET source_id = %s WHERE id = %s", (folder, row_id))
    return [row_id]


def file_contents_lost(conn: Conn, facts: dict[str, Any]) -> list[str]:
    file_id = one(
        conn,
        "SELECT f.id FROM files f JOIN file_contents c ON c.file_id = f.id "
        "WHERE f.processing_status = 'completed' ORDER BY f.id LIMIT 1",
    )
    conn.execute("DELETE FROM file_contents WHERE file_id = %s", (file_id,))
    return [file_id]


def file_window_from_elsewhere(conn: Conn, facts: dict[str, Any]) -> list[str]:
    row_id = one(conn, "SELECT id FROM files_agents WHERE is_open AND NOT is_deleted ORDER BY id LIMIT 1")
    conn.execute(
        "UPDATE files_agents SET visible_content = %s WHERE id = %s",
        ("[Viewing file start (out of 2 lines)]\n1: text that no file contains\n2: at all", row_id),
    )
    return [row_id]


def embedding_padding_dirty(conn: Conn, facts: dict[str, Any]) -> list[str]:
    passage_id = one(
        conn,
        "SELECT id FROM archival_passages WHERE (embedding_config->>'embedding_dim')::int < 4000 ORDER BY id LIMIT 1",
    )
    conn.execute(
        "UPDATE archival_passages SET embedding = "
        "(SELECT (a[1:3999] || ARRAY[0.5::real] || a[4001:4096])::vector FROM (SELECT embedding::real[] AS a) x) "
        "WHERE id = %s",
        (passage_id,),
    )
    return [passage_id]


def llm_config_broken(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, _ = _agent_with_context(conn)
    conn.execute("UPDATE agents SET llm_config = '{\"model\": 42}'::json WHERE id = %s", (agent_id,))
    return [agent_id]


def embedding_config_broken(conn: Conn, facts: dict[str, Any]) -> list[str]:
    source_id = one(conn, "SELECT id FROM sources ORDER BY id LIMIT 1")
    conn.execute(
        "UPDATE sources SET embedding_config = "
        "(embedding_config::jsonb || '{\"embedding_dim\": 9000}'::jsonb)::json WHERE id = %s",
        (source_id,),
    )
    return [source_id]


def tool_rule_of_unknown_type(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, tool_name = one(
        conn,
        "SELECT ta.agent_id, t.name FROM tools_agents ta JOIN tools t ON t.id = ta.tool_id "
        "ORDER BY ta.agent_id, t.name LIMIT 1",
    )
    rule = {"type": "teleport", "tool_name": tool_name}
    conn.execute(
        "UPDATE agents SET tool_rules = (coalesce(tool_rules::jsonb, '[]'::jsonb) || %s::jsonb)::json WHERE id = %s",
        (json.dumps([rule]), agent_id),
    )
    return [agent_id]


def tool_rule_names_missing_tool(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, _ = _agent_with_context(conn)
    rule = {"type": "exit_loop", "tool_name": "no_such_tool_anywhere"}
    conn.execute(
        "UPDATE agents SET tool_rules = (coalesce(tool_rules::jsonb, '[]'::jsonb) || %s::jsonb)::json WHERE id = %s",
        (json.dumps([rule]), agent_id),
    )
    return [agent_id]


def sequence_rewound(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("SELECT setval('message_seq_id', 1)")
    return []


def attached_tool_deleted_with_triggers_off(conn: Conn, facts: dict[str, Any]) -> list[str]:
    tool_id = facts["custom_tool"]["id"]
    attachments = [
        f"{agent_id}/{tool_id}"
        for (agent_id,) in conn.execute("SELECT agent_id FROM tools_agents WHERE tool_id = %s", (tool_id,))
    ]
    conn.execute("SET session_replication_role = replica")
    conn.execute("DELETE FROM tools WHERE id = %s", (tool_id,))
    return attachments


def malformed_id(conn: Conn, facts: dict[str, Any]) -> list[str]:
    trace_id = one(conn, "SELECT id FROM provider_traces ORDER BY id LIMIT 1")
    conn.execute("UPDATE provider_traces SET id = 'trace-without-prefix' WHERE id = %s", (trace_id,))
    return ["trace-without-prefix"]


def secret_from_another_key(conn: Conn, facts: dict[str, Any]) -> list[str]:
    row_id = one(conn, "SELECT id FROM agent_environment_variables ORDER BY id LIMIT 1")
    conn.execute(
        "UPDATE agent_environment_variables SET value_enc = %s WHERE id = %s",
        (secrets.encrypt("s3cret", "not-the-deployment-key"), row_id),
    )
    # the other secret values are re-encrypted with the right key: only the injected one is wrong
    for other_id, value in conn.execute(
        "SELECT id, value_enc FROM agent_environment_variables WHERE id <> %s AND value_enc <> ''", (row_id,)
    ).fetchall():
        conn.execute(
            "UPDATE agent_environment_variables SET value_enc = %s WHERE id = %s",
            (secrets.encrypt(value, ZOO_KEY), other_id),
        )
    return [row_id]


def search_path_lost(conn: Conn, facts: dict[str, Any]) -> list[str]:
    # With role and schema both named letta, the built-in "$user" path would still find the
    # tables; a schema named after another database (restored under a new name) is not found.
    conn.execute(f'ALTER DATABASE "{conn.info.dbname}" RESET search_path')
    conn.execute("ALTER SCHEMA letta RENAME TO restored_copy")
    return ["restored_copy"]


def database_search_path_lost(conn: Conn, facts: dict[str, Any]) -> list[str]:
    # what a plain pg_dump/pg_restore into a new database leaves: only "$user" finds the tables
    conn.execute(f'ALTER DATABASE "{conn.info.dbname}" RESET search_path')
    return ["letta"]


def _zoo_role(conn: Conn) -> str:
    conn.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lifeboat_zoo_other') "
        "THEN CREATE ROLE lifeboat_zoo_other; END IF; END $$"
    )
    return "lifeboat_zoo_other"


def table_of_another_owner(conn: Conn, facts: dict[str, Any]) -> list[str]:
    # the server can still read and write it (granted), but not migrate it
    role = _zoo_role(conn)
    conn.execute(f"ALTER TABLE agents_tags OWNER TO {role}")
    conn.execute("GRANT ALL ON agents_tags TO letta")
    return ["table agents_tags"]


def object_shadowing_letta(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("CREATE SCHEMA zoo_shadow AUTHORIZATION letta")
    conn.execute("CREATE TABLE zoo_shadow.agents (id varchar PRIMARY KEY)")
    conn.execute("ALTER TABLE zoo_shadow.agents OWNER TO letta")
    conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET search_path TO zoo_shadow, letta')
    return ["zoo_shadow.agents"]


def revision_stamp_rewound(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("UPDATE alembic_version SET version_num = 'b2c3d4e5f6a8'")  # Letta 0.16.5's head
    return ["b2c3d4e5f6a8"]


def unique_constraint_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("ALTER TABLE agent_environment_variables DROP CONSTRAINT uix_key_agent")
    return ["uix_key_agent"]


def default_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("ALTER TABLE block ALTER COLUMN version DROP DEFAULT")
    return ["version"]


def not_null_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("ALTER TABLE messages ALTER COLUMN tool_calls DROP NOT NULL")
    return ["tool_calls"]


def column_type_changed(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("ALTER TABLE agents ALTER COLUMN timezone TYPE text")
    return ["timezone"]


def unique_index_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("DROP INDEX ix_block_history_block_id_sequence")
    return ["ix_block_history_block_id_sequence"]


def index_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("DROP INDEX ix_messages_agent_created_at")
    return ["ix_messages_agent_created_at"]


def extra_index(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("CREATE INDEX zoo_messages_model ON messages (model)")
    return ["zoo_messages_model"]


def extra_table(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("CREATE TABLE zoo_extra (id varchar PRIMARY KEY)")
    conn.execute("ALTER TABLE zoo_extra OWNER TO letta")
    return ["zoo_extra"]


def enum_label_added(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("ALTER TYPE stepstatus ADD VALUE 'ZOMBIE'")
    return ["stepstatus"]


def unknown_message_role(conn: Conn, facts: dict[str, Any]) -> list[str]:
    message_id = one(conn, "SELECT id FROM messages WHERE role = 'assistant' ORDER BY id LIMIT 1")
    conn.execute("UPDATE messages SET role = 'robot' WHERE id = %s", (message_id,))
    return [message_id]


def unknown_run_status(conn: Conn, facts: dict[str, Any]) -> list[str]:
    run_id = one(conn, "SELECT id FROM runs WHERE status = 'completed' ORDER BY id LIMIT 1")
    conn.execute("UPDATE runs SET status = 'paused' WHERE id = %s", (run_id,))
    return [run_id]


def unknown_step_stop_reason(conn: Conn, facts: dict[str, Any]) -> list[str]:
    step_id = one(conn, "SELECT id FROM steps WHERE stop_reason IS NOT NULL ORDER BY id LIMIT 1")
    conn.execute("UPDATE steps SET stop_reason = 'coffee_break' WHERE id = %s", (step_id,))
    return [step_id]


def block_over_limit(conn: Conn, facts: dict[str, Any]) -> list[str]:
    block_id = one(conn, "SELECT id FROM block WHERE char_length(value) > 10 ORDER BY id LIMIT 1")
    conn.execute('UPDATE block SET "limit" = 10 WHERE id = %s', (block_id,))
    return [block_id]


def message_in_another_agents_conversation(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, ids = _agent_with_context(conn)
    other_agent, org = one(
        conn, "SELECT id, organization_id FROM agents WHERE id <> %s ORDER BY id LIMIT 1", agent_id
    )
    conversation = f"conv-{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO conversations (id, agent_id, organization_id) VALUES (%s, %s, %s)",
        (conversation, other_agent, org),
    )
    moved = ids[-1]
    _set_message_ids(conn, agent_id, ids[:-1])
    conn.execute("UPDATE messages SET conversation_id = %s WHERE id = %s", (conversation, moved))
    return [moved]


def column_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conn.execute("ALTER TABLE agents DROP COLUMN timezone")
    return ["timezone"]


def foreign_key_dropped(conn: Conn, facts: dict[str, Any]) -> list[str]:
    name = one(
        conn,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'files'::regclass AND contype = 'f' "
        "AND confrelid = 'sources'::regclass",
    )
    conn.execute(f'ALTER TABLE files DROP CONSTRAINT "{name}"')
    return [name]


def second_archive_for_an_agent(conn: Conn, facts: dict[str, Any]) -> list[str]:
    agent_id, org = one(
        conn,
        "SELECT aa.agent_id, a.organization_id FROM archives_agents aa "
        "JOIN agents a ON a.id = aa.agent_id ORDER BY 1 LIMIT 1",
    )
    for name in [
        row[0]
        for row in conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'archives_agents'::regclass AND contype = 'u'"
        )
    ]:
        conn.execute(f'ALTER TABLE archives_agents DROP CONSTRAINT "{name}"')
    archive = f"archive-{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO archives (id, name, organization_id, embedding_config, vector_db_provider, metadata_) "
        "SELECT %s, 'zoo archive', %s, embedding_config, vector_db_provider, metadata_ FROM archives LIMIT 1",
        (archive, org),
    )
    conn.execute(
        "INSERT INTO archives_agents (agent_id, archive_id, is_owner) VALUES (%s, %s, false)",
        (agent_id, archive),
    )
    return [agent_id]


def conversation_points_at_other_agent(conn: Conn, facts: dict[str, Any]) -> list[str]:
    row_id, agent_id = one(conn, "SELECT id, agent_id FROM conversation_messages ORDER BY id LIMIT 1")
    other = one(conn, "SELECT id FROM messages WHERE agent_id <> %s ORDER BY id LIMIT 1", agent_id)
    conn.execute("UPDATE conversation_messages SET message_id = %s WHERE id = %s", (other, row_id))
    return [row_id]


def conversation_block_filed_under_another_label(conn: Conn, facts: dict[str, Any]) -> list[str]:
    conversation = facts["conversation"]["conversation_id"]
    block_id = one(conn, "SELECT id FROM block WHERE label = 'human' ORDER BY id LIMIT 1")
    conn.execute(
        "INSERT INTO blocks_conversations (conversation_id, block_id, block_label) VALUES (%s, %s, 'persona')",
        (conversation, block_id),
    )
    return [f"{conversation}/{block_id}"]


def run_metrics_of_another_agent(conn: Conn, facts: dict[str, Any]) -> list[str]:
    run_id, agent_id = one(conn, "SELECT id, agent_id FROM run_metrics ORDER BY id LIMIT 1")
    other = one(conn, "SELECT id FROM agents WHERE id <> %s ORDER BY id LIMIT 1", agent_id)
    conn.execute("UPDATE run_metrics SET agent_id = %s WHERE id = %s", (other, run_id))
    return [run_id]


DEFECTS: list[Defect] = [
    Defect("dangling message id", "message_ids.dangling", "agents", dangling_message_id),
    Defect("another agent's message in context", "message_ids.foreign", "agents", foreign_message_id),
    Defect("message listed twice", "message_ids.duplicate", "agents", duplicate_message_id),
    Defect("system message not first", "message_ids.system_first", "agents", system_not_first),
    Defect("message_ids not a list", "message_ids.not_array", "agents", message_ids_not_a_list),
    Defect(
        "groups_agents row lost",
        "groups.agent_ids_drift",
        "groups",
        group_member_row_lost,
        also=("groups.sleeptime_shape",),  # the only group is a sleeptime one: it lost its member
    ),
    Defect(
        "block label copy differs", "blocks_agents.label_mismatch", "blocks_agents", block_label_copy_differs
    ),
    Defect("passage tag row lost", "passage_tags.drift", "archival_passages", passage_tag_row_lost),
    Defect(
        "file row in another folder",
        "files_agents.source_mismatch",
        "files_agents",
        file_row_in_other_folder,
        also=("files_agents.unattached_folder",),  # that other folder is not attached to the agent
    ),
    Defect("file contents lost", "files.missing_content", "files", file_contents_lost),
    Defect(
        "open file shows foreign text",
        "file_blocks.content_mismatch",
        "files_agents",
        file_window_from_elsewhere,
    ),
    Defect("embedding padding dirty", "embeddings.padding", "archival_passages", embedding_padding_dirty),
    Defect("llm_config broken", "config.llm_config", "agents", llm_config_broken),
    Defect("folder embedding_dim too big", "config.embedding_config", "sources", embedding_config_broken),
    Defect("tool rule of unknown type", "config.tool_rules", "agents", tool_rule_of_unknown_type),
    Defect(
        "tool rule names a missing tool", "tool_rules.unknown_tool", "agents", tool_rule_names_missing_tool
    ),
    Defect("message sequence rewound", "sequence.behind", "messages", sequence_rewound),
    Defect(
        "attached tool deleted (triggers off)",
        "fk.violation",
        "tools_agents",
        attached_tool_deleted_with_triggers_off,
    ),
    Defect("id without prefix", "ids.malformed", "provider_traces", malformed_id),
    Defect(
        "secret from another key",
        "secrets.undecryptable",
        "agent_environment_variables",
        secret_from_another_key,
        ZOO_KEY,
    ),
    Defect("schema not on the search_path", "schema.search_path", "-", search_path_lost),
    Defect("database search_path lost", "schema.database_search_path", "-", database_search_path_lost),
    Defect("table of another owner", "schema.owner", "-", table_of_another_owner),
    Defect("table shadowing Letta's", "schema.shadowed", "-", object_shadowing_letta),
    Defect("revision stamp rewound", "schema.revision_mismatch", "alembic_version", revision_stamp_rewound),
    Defect(
        "unique constraint dropped",
        "schema.missing_constraint",
        "agent_environment_variables",
        unique_constraint_dropped,
    ),
    Defect("column default dropped", "schema.column_default", "block", default_dropped),
    Defect("NOT NULL dropped", "schema.column_not_null", "messages", not_null_dropped),
    Defect("column type changed", "schema.column_type", "agents", column_type_changed),
    Defect("unique index dropped", "schema.missing_unique_index", "block_history", unique_index_dropped),
    Defect("index dropped", "schema.missing_index", "messages", index_dropped),
    Defect("index Letta does not define", "schema.extra_index", "messages", extra_index),
    Defect("table Letta does not define", "schema.extra_table", "-", extra_table),
    Defect("enum type with another label", "schema.enum_labels", "-", enum_label_added),
    Defect("unknown message role", "values.message_role", "messages", unknown_message_role),
    Defect("unknown run status", "values.run_status", "runs", unknown_run_status),
    Defect("unknown step stop reason", "values.stop_reason", "steps", unknown_step_stop_reason),
    Defect("block over its limit", "block.over_limit", "block", block_over_limit),
    Defect(
        "conversation block under another label",
        "blocks_conversations.label_mismatch",
        "blocks_conversations",
        conversation_block_filed_under_another_label,
    ),
    Defect(
        "run metrics of another agent", "metrics.agent_mismatch", "run_metrics", run_metrics_of_another_agent
    ),
    Defect(
        "message in another agent's conversation",
        "messages.conversation_agent",
        "messages",
        message_in_another_agents_conversation,
    ),
    Defect("column dropped", "schema.missing_column", "agents", column_dropped),
    Defect("foreign key dropped", "schema.missing_foreign_key", "files", foreign_key_dropped),
    Defect(
        "agent with two archives",
        "archives_agents.multiple",
        "archives_agents",
        second_archive_for_an_agent,
        also=("schema.missing_constraint",),  # the unique constraint had to go to let the row in
    ),
    Defect(
        "conversation row with another agent's message",
        "conversation_messages.foreign",
        "conversation_messages",
        conversation_points_at_other_agent,
    ),
]
