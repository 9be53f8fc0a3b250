"""Issue 5, must-shows 1-4: agent-level restores into the live database while the real Letta
0.16.8 server (with Redis) runs on it. One server for the module: the tests run in an order where
no test's messages can disturb a later one's "everything else is unchanged" check."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from agents_testing import agent_rows, digests_outside, lifeboat_json, subgraph_ids
from ops_testing import new_repo

from lifeboat.errors import SandboxError
from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase, load_deployment
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster
from lifeboat.sandbox.redis_server import RedisServer

pytestmark = pytest.mark.letta_server


@dataclass
class Live:
    db: LettaDatabase
    server: LettaServer
    redis: RedisServer
    repo: Repository
    repo_path: str

    def restore(self, *args: str) -> dict[str, Any]:
        """``lifeboat restore`` as an operator next to the server runs it (Letta's env vars)."""
        env = {"LETTA_REDIS_HOST": "127.0.0.1", "LETTA_REDIS_PORT": str(self.redis.port)}
        result, report = lifeboat_json(
            "restore", "--repo", self.repo_path, "--db", self.db.dsn, *args, env=env
        )
        assert result.returncode == 0, result.stderr
        assert isinstance(report, dict)
        return report

    def backup(self) -> str:
        return run_backup(self.repo, self.db.admin_dsn).snapshot.id

    def say(self, agent_id: str, text: str) -> list[dict[str, Any]]:
        reply = self.server.post(
            f"/v1/agents/{agent_id}/messages", {"messages": [{"role": "user", "content": text}]}
        )
        return list(reply["messages"])


def answered(reply: list[dict[str, Any]]) -> bool:
    """The agent said something back: plain content, or send_message (sleeptime main agents)."""
    return any(
        m["message_type"] == "assistant_message"
        or (m["message_type"] == "tool_call_message" and m["tool_call"]["name"] == "send_message")
        for m in reply
    )


@pytest.fixture(scope="module")
def live(pg_cluster: Cluster, fake_llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    db = load_deployment(pg_cluster, f"letta_agents_{os.getpid()}")
    redis = RedisServer().start()
    server = LettaServer(db.dsn, llm=fake_llm, redis_port=redis.port)
    try:
        server.start()
        path = tmp_path_factory.mktemp("agent-restore") / "repo"
        yield Live(db, server, redis, new_repo(path), str(path))
    finally:
        server.cleanup()
        redis.stop()
        db.drop()


def owned_ids(dsn: str, table: str, agent_id: str) -> set[str]:
    if table == "archival_passages":
        query = (
            "SELECT p.id FROM letta.archival_passages p JOIN letta.archives_agents aa "
            "ON aa.archive_id = p.archive_id WHERE aa.agent_id = %s"
        )
    else:
        query = f"SELECT id FROM letta.{table} WHERE agent_id = %s"
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute(query, (agent_id,))}  # type: ignore[call-overload]


def view(live: Live, agent_id: str) -> dict[str, Any]:
    """What the API shows of an agent: memory and file blocks, every message, passages, tools,
    folders, identities, tags, secrets and its group."""
    agent = live.server.get(f"/v1/agents/{agent_id}")
    memory = agent["memory"]
    group = agent.get("multi_agent_group")
    messages = live.server.get(f"/v1/agents/{agent_id}/messages", limit=1000)
    passages = live.server.get(f"/v1/agents/{agent_id}/archival-memory", limit=1000)
    return {
        "name": agent["name"],
        "system": agent["system"],
        "message_ids": agent["message_ids"],
        "blocks": sorted((b["id"], b["label"], b["value"]) for b in memory["blocks"]),
        "file_blocks": sorted(
            (f.get("file_id"), f["label"], f["value"], f.get("is_open"))
            for f in memory.get("file_blocks") or []
        ),
        "tools": sorted(t["id"] for t in agent["tools"]),
        "folders": sorted(s["id"] for s in agent["sources"]),
        "identities": sorted(agent["identity_ids"] or []),
        "tags": sorted(agent["tags"]),
        "secrets": sorted((s["key"], s["value"]) for s in agent["secrets"] or []),
        "group": group and (group["id"], group["manager_type"], group["agent_ids"]),
        "messages": [
            (m["id"], m["message_type"], json.dumps(m.get("content") or m.get("tool_call"))) for m in messages
        ],
        "passages": sorted((p["id"], p["text"], tuple(p.get("tags") or [])) for p in passages),
    }


def test_overwritten_memory_comes_back_and_nothing_else_changes(live: Live) -> None:
    """Must-show 2."""
    agent_id = live.db.facts["agent_ids"]["lb-agent-05"]
    snapshot = live.backup()
    before = view(live, agent_id)
    live.server.patch(
        f"/v1/agents/{agent_id}/core-memory/blocks/human", {"value": "Everything you knew is gone."}
    )
    live.server.patch(f"/v1/agents/{agent_id}/core-memory/blocks/persona", {"value": "I am someone else."})
    assert view(live, agent_id)["blocks"] != before["blocks"]
    excluded = subgraph_ids(live.db.admin_dsn, [agent_id])
    outside = digests_outside(live.db.admin_dsn, excluded)

    report = live.restore("--agent", agent_id, "--snapshot", snapshot)
    assert "held 1 Letta lock" in report["redis"]
    assert view(live, agent_id) == before
    assert digests_outside(live.db.admin_dsn, excluded) == outside


def test_copy_into_the_same_org_answers_and_leaves_the_original_alone(live: Live) -> None:
    """Must-show 3."""
    agent_id = live.db.facts["agent_ids"]["lb-agent-00"]
    live.backup()
    original = agent_rows(live.db.admin_dsn, [agent_id])
    original_view = view(live, agent_id)

    report = live.restore("--agent", agent_id, "--mode", "copy", "--suffix", " (copy)")
    copy_id = report["agents"][0]["new_id"]
    copy = view(live, copy_id)
    assert copy["name"] == "lb-agent-00 (copy)"
    assert agent_rows(live.db.admin_dsn, [agent_id]) == original
    assert view(live, agent_id) == original_view
    # new ids everywhere the copy owns; shared blocks, tools, folders and identities reused
    for table in ("messages", "runs", "steps", "archival_passages"):
        new_ids = owned_ids(live.db.admin_dsn, table, copy_id)
        assert new_ids and new_ids.isdisjoint(owned_ids(live.db.admin_dsn, table, agent_id)), table
    assert set(copy["message_ids"]).isdisjoint(original_view["message_ids"])
    assert len(copy["messages"]) == len(original_view["messages"])
    own = {label for _id, label, _v in copy["blocks"]} & {"human", "persona"}
    assert own == {"human", "persona"}
    assert {b for b in copy["blocks"] if b[1] in own}.isdisjoint(original_view["blocks"])
    assert {b for b in copy["blocks"] if b[1] == "team"} <= set(original_view["blocks"])
    assert copy["tools"] == original_view["tools"] and copy["folders"] == original_view["folders"]
    assert len(copy["passages"]) == len(original_view["passages"])

    assert answered(live.say(copy_id, "Hello copy, are you there?"))


def test_restore_while_the_server_serves_other_agents(live: Live) -> None:
    """Must-show 4: messages to other agents during restores: no errors, nothing lost."""
    restored = live.db.facts["agent_ids"]["lb-agent-07"]
    talkers = [live.db.facts["agent_ids"][f"lb-agent-{i:02d}"] for i in (10, 11, 12, 13)]
    live.backup()
    sent: dict[str, list[str]] = {agent: [] for agent in talkers}
    errors: list[BaseException] = []
    stop = threading.Event()

    def talk(agent_id: str) -> None:
        n = 0
        while not stop.is_set() and n < 20:
            text = f"traffic {agent_id[-6:]} #{n}"
            try:
                live.say(agent_id, text)
                sent[agent_id].append(text)
            except Exception as exc:  # any failure counts
                errors.append(exc)
            n += 1

    threads = [threading.Thread(target=talk, args=(agent,)) for agent in talkers]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        for _ in range(3):
            report = live.restore("--agent", restored)
            assert report["tables"] and not report["dry_run"]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=300)
    assert not errors, errors[:3]
    for agent_id, texts in sent.items():
        assert texts
        shown = json.dumps(live.server.get(f"/v1/agents/{agent_id}/messages", limit=1000))
        assert all(text in shown for text in texts), agent_id


def test_deleted_agents_come_back_whole(live: Live) -> None:
    """Must-show 1: the sleeptime agent (with its sibling and group) and the agent with a secret,
    deleted through the API and restored in place."""
    main = live.db.facts["sleeptime"]["agent_id"]
    sibling = live.db.facts["sleeptime"]["sibling_id"]
    secret_agent = live.db.facts["secret"]["agent_id"]
    ids = [main, sibling, secret_agent]
    snapshot = live.backup()
    before = {agent: view(live, agent) for agent in ids}
    rows = agent_rows(live.db.admin_dsn, ids)
    assert before[main]["group"] and before[main]["passages"] and before[main]["file_blocks"]
    assert before[secret_agent]["secrets"] == [
        (live.db.facts["secret"]["key"], live.db.facts["secret"]["value"])
    ]

    live.server.delete(f"/v1/agents/{main}")
    live.server.delete(f"/v1/agents/{secret_agent}")
    for agent in ids:
        with pytest.raises(SandboxError, match="404"):
            live.server.get(f"/v1/agents/{agent}")

    report = live.restore("--agent", main, "--agent", secret_agent, "--snapshot", snapshot[:12])
    assert {a["id"] for a in report["agents"]} == set(ids)
    assert not any(a["live"] for a in report["agents"])
    assert {agent: view(live, agent) for agent in ids} == before
    assert agent_rows(live.db.admin_dsn, ids) == rows  # embeddings, encrypted secret, runs, steps...
    for agent in (main, secret_agent):
        assert answered(live.say(agent, "Welcome back! Do you remember me?")), agent
