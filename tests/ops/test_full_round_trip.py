"""Issue 4, must-show 1: backup, restore into a fresh PostgreSQL, identical tables and schema,
and the real Letta server works on the restored database."""

from __future__ import annotations

import pytest
from ops_testing import normalized_schema, scalar, table_digests

from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.letta_schema import ensure_letta_role
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster


def _agents_view(server: LettaServer) -> dict[str, dict[str, object]]:
    """What the API shows of every agent: name, memory blocks, every message's content."""
    view = {}
    for agent in server.get("/v1/agents/", limit=1000):
        blocks = server.get(f"/v1/agents/{agent['id']}/core-memory/blocks")
        messages = server.get(f"/v1/agents/{agent['id']}/messages", limit=1000)
        view[agent["id"]] = {
            "name": agent["name"],
            "blocks": sorted((b["id"], b["label"], b["value"]) for b in blocks),
            "messages": [
                (m["id"], m.get("message_type"), str(m.get("content") or m.get("tool_call") or ""))
                for m in messages
            ],
        }
    return view


@pytest.mark.letta_server
def test_round_trip_into_fresh_postgres(
    letta_db, pg18_cluster: Cluster, repo: Repository, letta_server
) -> None:
    source = letta_db
    result = run_backup(repo, source.admin_dsn, tags=["nightly"])
    assert result.snapshot.documents["source"]["letta_revision"] == "1c28e167b74f"
    encodings = {
        s.attributes["table"]: (s.attributes.get("encoding"), s.records) for s in result.snapshot.streams
    }
    assert encodings["archival_passages"][0] == encodings["source_passages"][0] == "copy-binary"
    assert encodings["archival_passages"][1] > 0  # vectors really went binary (into another major below)
    assert encodings["messages"][0] is None

    ensure_letta_role(pg18_cluster)  # the operator's init.sql role; restore keeps ownership when it exists
    target_dsn = pg18_cluster.dsn("letta_restored")
    run_restore(repo, result.snapshot.id, target_dsn)

    assert table_digests(target_dsn) == table_digests(source.admin_dsn)
    newest_dump = max((pg18_cluster, source.cluster), key=lambda c: c.major).tool("pg_dump")
    assert normalized_schema(newest_dump, target_dsn) == normalized_schema(newest_dump, source.admin_dsn)
    assert scalar(target_dsn, "SELECT last_value FROM letta.message_seq_id") >= scalar(
        source.admin_dsn, "SELECT max(sequence_id) FROM letta.messages"
    )
    settings = scalar(
        target_dsn,
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE d.datname = 'letta_restored' AND s.setrole = 0",
    )
    assert "search_path=letta" in settings

    with LettaServer(source.dsn) as original:
        before = _agents_view(original)
    with LettaServer(pg18_cluster.dsn("letta_restored", "letta", "letta")) as restored:
        assert _agents_view(restored) == before
        agent_id = (
            source.facts["agents"][0]["id"]
            if isinstance(source.facts["agents"], list)
            else next(iter(source.facts["agents"].values()))
        )
        reply = restored.post(
            f"/v1/agents/{agent_id}/messages",
            {"messages": [{"role": "user", "content": "hello after restore"}]},
        )
        assert reply["messages"], reply
