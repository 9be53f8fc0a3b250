"""Snapshots of older Letta releases (0.11.7, 0.14.0, 0.16.0: real deployments made by each release's
own server) migrate the same way, from the snapshot and from the live database: every agent, counts equal to the database's, message texts equal
and in order, and the real Letta Code lists the agents and searches their history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lc_testing import LettaCode, db_messages, db_rows, pi_texts, transcript
from ops_testing import cli, new_repo

from lifeboat.sandbox.letta_code_env import ensure_letta_code_env
from lifeboat.sandbox.postgres import Cluster
from lifeboat.sandbox.release_deployment import load_release


@pytest.mark.parametrize("version", ["0.11.7", "0.14.0", "0.16.0"])
def test_an_older_release_snapshot_migrates(version: str, pg_cluster: Cluster, tmp_path: Path) -> None:
    database = load_release(pg_cluster, f"lc_rel_{version.replace('.', '_')}", version)
    try:
        new_repo(tmp_path / "repo")
        assert cli("backup", "--repo", str(tmp_path / "repo"), "--db", database.dsn).returncode == 0
        backend = tmp_path / "backend"
        done = cli(
            "--json",
            "migrate",
            str(backend),
            "--repo",
            str(tmp_path / "repo"),
            "--snapshot",
            "latest",
            "--all",
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        agents = dict(db_rows(database.dsn, "SELECT id, name FROM agents"))
        assert {a["v1_id"]: a["name"] for a in report["agents"]} == agents and agents
        messages = dict(db_rows(database.dsn, "SELECT agent_id, count(*) FROM messages GROUP BY 1"))
        blocks = dict(db_rows(database.dsn, "SELECT agent_id, count(*) FROM blocks_agents GROUP BY 1"))
        searched = None
        for agent in report["agents"]:
            assert agent["counts"]["messages"]["v1"] == messages.get(agent["v1_id"], 0)
            assert (
                agent["counts"]["blocks"]["v1"]
                == agent["counts"]["blocks"]["written"]
                == blocks.get(agent["v1_id"], 0)
            )
            rows = [(r[0], r[3]) for r in db_messages(database.dsn, agent["v1_id"]) if r[2] != "system"]
            found = [
                (m["id"], pi_texts(m))
                for c in agent["conversations"]
                for m in transcript(backend, agent["id"], None if c["id"] == "default" else c["id"])
            ]
            assert sorted(found) == sorted(rows) and len(found) == len(rows)
            default = [(m["id"], pi_texts(m)) for m in transcript(backend, agent["id"])]
            assert default == [r for r in rows if r in default]  # in database order
            user = next(
                (r for r in db_messages(database.dsn, agent["v1_id"]) if r[2] == "user" and r[3]), None
            )
            if searched is None and user is not None:
                searched = (agent["id"], user[0], user[3][0].split(".")[0][:40])
        live = cli("--json", "migrate", str(tmp_path / "live"), "--db", database.dsn, "--all", "--dry-run")
        assert live.returncode == 0, live.stderr
        assert [a["memory_commit"] for a in json.loads(live.stdout)["agents"]] == [
            a["memory_commit"] for a in report["agents"]
        ]
        code = LettaCode(ensure_letta_code_env(), backend, tmp_path / "home")
        assert {a["id"] for a in code.agents()} == {a["id"] for a in report["agents"]}
        assert searched is not None
        agent_id, message_id, query = searched
        assert message_id in [
            m["id"] for m in code.json("messages", "search", "--query", query, "--agent", agent_id)
        ]
    finally:
        database.drop()
