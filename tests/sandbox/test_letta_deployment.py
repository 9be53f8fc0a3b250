"""The cached real-Letta deployment: what every other test is judged against must be all there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.letta_schema import HEAD_REVISION
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster


def scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_facts_describe_the_deployment(letta_deployment: dict[str, Any]) -> None:
    facts = letta_deployment
    assert facts["alembic_revision"] == HEAD_REVISION
    assert facts["letta_version"] == "0.16.8"
    assert len(facts["agents"]) >= 20
    assert facts["sleeptime"]["sibling_name"] == f"{facts['sleeptime']['agent_name']}-sleeptime"
    assert all(len(block["agent_ids"]) >= 2 for block in facts["shared_blocks"])
    assert {c["kind"] for c in facts["crashed"]} == {"first_call", "after_tool"}
    assert all(c["pending_step_id"] for c in facts["crashed"])
    assert facts["secret"]["agent_id"] in facts["agent_ids"].values()


def test_loaded_database_has_the_production_layout(letta_db: LettaDatabase) -> None:
    admin = letta_db.admin_dsn
    assert scalar(admin, "SELECT version_num FROM letta.alembic_version") == HEAD_REVISION
    assert (
        scalar(admin, "SELECT schemaname FROM pg_sequences WHERE sequencename = 'message_seq_id'") == "letta"
    )
    assert (
        scalar(
            admin,
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
        )
        == "letta"
    )
    assert (
        scalar(admin, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'letta'") == "letta"
    )
    assert scalar(admin, "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'") == 0
    settings = scalar(
        admin,
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
        f"WHERE d.datname = '{letta_db.dbname}' AND s.setrole = 0",
    )
    assert settings == "search_path=letta"
    assert scalar(admin, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'letta'") == 49
    # The application role sees the tables through the database-level search_path.
    assert scalar(letta_db.dsn, "SELECT count(*) FROM agents") >= 20
    assert not scalar(letta_db.dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")


def test_loaded_database_exercises_the_data_model(letta_db: LettaDatabase) -> None:
    dsn = letta_db.admin_dsn
    assert scalar(dsn, "SELECT count(*) FROM agents") >= 20
    assert (
        scalar(dsn, "SELECT max(n) FROM (SELECT count(*) AS n FROM blocks_agents GROUP BY block_id) x") >= 2
    )
    assert scalar(dsn, "SELECT count(*) FROM files_agents") > 0
    assert scalar(dsn, "SELECT count(*) FROM source_passages") > 0
    assert scalar(dsn, "SELECT count(*) FROM archival_passages") > 0
    assert (
        scalar(
            dsn,
            "SELECT count(*) FROM archival_passages WHERE l2_distance(embedding, array_fill(0, ARRAY[4096])::vector) > 0",
        )
        > 0
    )
    assert scalar(dsn, "SELECT count(*) FROM groups WHERE manager_type = 'sleeptime'") == 1
    assert scalar(dsn, "SELECT count(*) FROM conversations") > 0
    assert scalar(dsn, "SELECT count(*) FROM conversation_messages") > 0
    assert scalar(dsn, "SELECT count(*) FROM agent_environment_variables") > 0
    assert scalar(dsn, "SELECT count(*) FROM identities_agents") > 0
    assert scalar(dsn, "SELECT count(*) FROM tools WHERE tool_type = 'custom'") >= 1
    assert scalar(dsn, "SELECT count(*) FROM messages") > 100
    assert scalar(dsn, "SELECT count(*) FROM runs WHERE status = 'completed'") > 40
    stuck = scalar(
        dsn,
        "SELECT count(*) FROM runs r JOIN steps s ON s.run_id = r.id "
        "WHERE r.status IN ('created', 'running') AND s.status = 'PENDING'",
    )
    assert stuck == 2
    crashed = {c["run_id"] for c in letta_db.facts["crashed"]}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id FROM runs WHERE status IN ('created', 'running')").fetchall()
    assert {r[0] for r in rows} == crashed


def test_the_after_tool_crash_kept_its_memory_edit(letta_db: LettaDatabase) -> None:
    after_tool = next(c for c in letta_db.facts["crashed"] if c["kind"] == "after_tool")
    value = scalar(
        letta_db.admin_dsn,
        "SELECT b.value FROM block b JOIN blocks_agents ba ON ba.block_id = b.id "
        f"WHERE ba.agent_id = '{after_tool['agent_id']}' AND b.label = 'human'",
    )
    assert "Crash witness note." in value


def test_loads_are_independent(
    letta_db_factory: Callable[[Cluster], LettaDatabase], pg_cluster: Cluster
) -> None:
    first, second = letta_db_factory(pg_cluster), letta_db_factory(pg_cluster)
    with psycopg.connect(first.admin_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM agents_tags")
    assert scalar(second.admin_dsn, "SELECT count(*) FROM agents_tags") > 0


def test_pg16_deployment(pg16_cluster: Cluster, letta_db_factory: Callable[[Cluster], LettaDatabase]) -> None:
    database = letta_db_factory(pg16_cluster)
    assert database.facts["flavor"] == "pg16"
    assert scalar(database.admin_dsn, "SHOW server_version_num").startswith("16")
    assert scalar(database.dsn, "SELECT version_num FROM alembic_version") == HEAD_REVISION
    assert scalar(database.dsn, "SELECT count(*) FROM agents") == len(database.facts["agents"])


@pytest.mark.letta_server
def test_real_server_on_a_loaded_database_lists_the_same_agents(
    letta_db: LettaDatabase, letta_server: Callable[..., LettaServer], redis_server: Any
) -> None:
    server = letta_server(letta_db.dsn, redis_port=redis_server.port)
    agents = server.get("/v1/agents/", limit=1000)
    assert {a["id"] for a in agents} == set(letta_db.facts["agent_ids"].values())
    shared = letta_db.facts["shared_blocks"][0]
    block = server.get(f"/v1/blocks/{shared['id']}")
    assert block["label"] == shared["label"]
    # The deployment still works: a new turn on a crashed agent succeeds.
    crashed = letta_db.facts["crashed"][0]["agent_id"]
    reply = server.post(
        f"/v1/agents/{crashed}/messages", {"messages": [{"role": "user", "content": "still there?"}]}
    )
    assert any(m["message_type"] == "assistant_message" for m in reply["messages"])
