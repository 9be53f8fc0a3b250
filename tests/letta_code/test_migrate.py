"""``lifeboat migrate --to letta-code`` on the real test deployment (Letta 0.16.8 on PostgreSQL),
checked against the database and by the real Letta Code (pinned, installed by the sandbox).

The deployment's agents have all their messages in context, so the fixture first does what
Letta's own "reset messages" leaves behind for one agent: its ``message_ids`` keep the system
message and the last four messages, everything older stays as out-of-context history.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lc_testing import LettaCode, db_messages, db_rows, pi_texts, transcript
from ops_testing import cli, new_repo

from lifeboat.letta_code import LETTA_CODE_VERSION, layout
from lifeboat.sandbox.deployment import LettaDatabase, load_deployment
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_code_env import LettaCodeEnv, ensure_letta_code_env
from lifeboat.sandbox.postgres import Cluster

DEEP_AGENT = "lb-agent-03"  # has a sleeptime sibling, files, archival passages and a custom tool
KEPT_IN_CONTEXT = 4


@pytest.fixture(scope="module")
def deployment(pg_cluster: Cluster) -> Iterator[LettaDatabase]:
    database = load_deployment(pg_cluster, "letta_lc_migrate")
    with_deep_history(database.dsn, database.facts["agent_ids"][DEEP_AGENT])
    yield database
    database.drop()


def with_deep_history(dsn: str, agent_id: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE agents SET message_ids = (SELECT json_agg(e ORDER BY n) FROM json_array_elements(message_ids) "
            "WITH ORDINALITY AS t(e, n) WHERE n = 1 OR n > json_array_length(message_ids) - %s) WHERE id = %s",
            (KEPT_IN_CONTEXT, agent_id),
        )


@pytest.fixture(scope="module")
def migrated(
    deployment: LettaDatabase, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], Path]:
    """Every agent migrated from a snapshot of the deployment (CLI, --json): (backend dir, report, repo)."""
    root = tmp_path_factory.mktemp("migrate")
    new_repo(root / "repo")
    assert cli("backup", "--repo", str(root / "repo"), "--db", deployment.dsn).returncode == 0
    done = cli(
        "--json",
        "migrate",
        "--to",
        "letta-code",
        str(root / "backend"),
        "--repo",
        str(root / "repo"),
        "--snapshot",
        "latest",
        "--all",
    )
    assert done.returncode == 0, done.stderr
    return root / "backend", json.loads(done.stdout), root / "repo"


@pytest.fixture(scope="module")
def letta_code_env() -> LettaCodeEnv:
    return ensure_letta_code_env()


def test_every_agent_migrates_with_counts_matching_the_database(
    deployment: LettaDatabase, migrated: tuple[Path, dict[str, Any], Path]
) -> None:
    _backend, report, _ = migrated
    dsn = deployment.dsn
    agents = dict(db_rows(dsn, "SELECT id, name FROM agents"))
    assert report["letta_code_version"] == LETTA_CODE_VERSION and report["source"] == "snapshot"
    assert {a["v1_id"]: a["name"] for a in report["agents"]} == agents
    assert report["id_map"] == {v1: layout.local_agent_id(v1) for v1 in agents}
    by_id = {a["v1_id"]: a for a in report["agents"]}
    expected = {
        "messages": "SELECT agent_id, count(*) FROM messages GROUP BY 1",
        "blocks": "SELECT agent_id, count(*) FROM blocks_agents GROUP BY 1",
        "passages": "SELECT aa.agent_id, count(*) FROM archives_agents aa JOIN archival_passages p ON p.archive_id = aa.archive_id GROUP BY 1",
        "files": "SELECT agent_id, count(*) FROM files_agents WHERE NOT is_deleted GROUP BY 1",
        "tools": "SELECT agent_id, count(*) FROM tools_agents GROUP BY 1",
    }
    for kind, query in expected.items():
        counts = dict(db_rows(dsn, query))
        assert {i: by_id[i]["counts"][kind]["v1"] for i in agents} == {i: counts.get(i, 0) for i in agents}, (
            kind
        )
    custom = dict(
        db_rows(
            dsn,
            "SELECT ta.agent_id, count(*) FROM tools_agents ta JOIN tools t ON t.id = ta.tool_id WHERE t.tool_type = 'custom' GROUP BY 1",
        )
    )
    for agent_id, agent in by_id.items():
        counts = agent["counts"]
        system = sum(o["count"] for o in agent["left_out"] if o["what"] == "system messages")
        assert counts["messages"]["written"] + system == counts["messages"]["v1"]
        assert counts["blocks"]["written"] == counts["blocks"]["v1"]
        assert counts["passages"]["written"] == counts["passages"]["v1"]
        assert counts["files"]["written"] == counts["files"]["v1"]
        assert counts["tools"]["written"] == custom.get(agent_id, 0)
    kinds = {o["what"] for a in report["agents"] for o in a["left_out"]}
    assert {"groups", "passage embeddings", "built-in tools", "system messages"} <= kinds


def test_message_texts_equal_the_databases_in_order(
    deployment: LettaDatabase, migrated: tuple[Path, dict[str, Any], Path]
) -> None:
    backend, report, _ = migrated
    compared = 0
    for agent in report["agents"]:
        rows = [r for r in db_messages(deployment.dsn, agent["v1_id"]) if r[2] != "system"]
        for conversation in agent["conversations"]:
            wanted = [
                (r[0], r[3])
                for r in rows
                if r[1] == (None if conversation["id"] == "default" else conversation["id"])
            ]
            found = [
                (m["id"], pi_texts(m))
                for m in transcript(
                    backend, agent["id"], None if conversation["id"] == "default" else conversation["id"]
                )
            ]
            assert found == wanted, (agent["name"], conversation["id"])
            compared += len(found)
    assert compared == sum(a["counts"]["messages"]["written"] for a in report["agents"]) > 150


def test_memory_repository_holds_blocks_passages_files_and_tools(
    deployment: LettaDatabase, migrated: tuple[Path, dict[str, Any], Path]
) -> None:
    import pygit2

    backend, report, _ = migrated
    agent = next(a for a in report["agents"] if a["name"] == DEEP_AGENT)
    repo = pygit2.Repository(str(backend / layout.memfs_dir(agent["id"])))
    commit = repo.head.peel(pygit2.Commit)
    assert commit.parents == [] and commit.message.startswith("chore: import memory")
    blocks = db_rows(
        deployment.dsn,
        "SELECT b.label, b.value FROM blocks_agents ba JOIN block b ON b.id = ba.block_id WHERE ba.agent_id = %s",
        (agent["v1_id"],),
    )
    for label, value in blocks:
        text = (backend / layout.memfs_dir(agent["id"]) / f"{label}.md").read_text()
        assert text.startswith(f"---\nname: {label}\n") and text.endswith(value)
    tree = {path for path in agent["memory_files"]}
    assert any(p.startswith("archival/passages-") for p in tree) and any(p.startswith("files/") for p in tree)
    assert any(p.startswith("skills/") and p.endswith("/source.py") for p in tree)
    passages = db_rows(
        deployment.dsn,
        "SELECT p.text FROM archives_agents aa JOIN archival_passages p ON p.archive_id = aa.archive_id WHERE aa.agent_id = %s",
        (agent["v1_id"],),
    )
    archival = "".join(
        (backend / layout.memfs_dir(agent["id"]) / p).read_text() for p in tree if p.startswith("archival/")
    )
    assert passages and all(text in archival for (text,) in passages)


def test_real_letta_code_lists_agents_memory_and_deep_history(
    deployment: LettaDatabase,
    migrated: tuple[Path, dict[str, Any], Path],
    letta_code_env: LettaCodeEnv,
    tmp_path: Path,
) -> None:
    backend, report, _ = migrated
    code = LettaCode(letta_code_env, backend, tmp_path / "home")
    listed = {a["id"]: a["name"] for a in code.agents()}
    assert listed == {a["id"]: a["name"] for a in report["agents"]}
    agent = next(a for a in report["agents"] if a["name"] == DEEP_AGENT)
    files = {
        f["path"] for f in code.json("memory", "tokens", "--agent", agent["id"], "--format", "json")["files"]
    }
    labels = {
        row[0]
        for row in db_rows(
            deployment.dsn,
            "SELECT b.label FROM blocks_agents ba JOIN block b ON b.id = ba.block_id WHERE ba.agent_id = %s",
            (agent["v1_id"],),
        )
    }
    assert files == {"MEMORY.md"} | {f"{label}.md" for label in labels}
    # the agent's first user message is older than its context window now
    first_id, _, _, first_texts = next(
        r for r in db_messages(deployment.dsn, agent["v1_id"]) if r[2] == "user"
    )
    in_context = db_rows(
        deployment.dsn, "SELECT message_ids::text FROM agents WHERE id = %s", (agent["v1_id"],)
    )[0][0]
    assert first_id not in in_context
    query = first_texts[0].split(".")[0]
    found = code.json("messages", "search", "--query", query, "--agent", agent["id"])
    assert first_id in [m["id"] for m in found]


def test_a_headless_turn_carries_the_migrated_memory(
    deployment: LettaDatabase,
    migrated: tuple[Path, dict[str, Any], Path],
    letta_code_env: LettaCodeEnv,
    tmp_path: Path,
) -> None:
    backend, report, _ = migrated
    scratch = tmp_path / "backend"
    shutil.copytree(backend, scratch)  # the turn writes; keep the module's copy pristine
    agent = next(a for a in report["agents"] if a["name"] == DEEP_AGENT)
    code = LettaCode(letta_code_env, scratch, tmp_path / "home")
    with FakeLLM() as llm:
        code.connect(llm)
        result = code.json(
            "-p",
            "What do you remember about me?",
            "--agent",
            agent["id"],
            "--conversation",
            "default",
            "--output-format",
            "json",
        )
        chats = [request for kind, request in llm.requests if kind == "chat"]
    assert result["is_error"] is False and chats
    request = chats[-1]
    assert request["model"] == "lifeboat-fake-llm"
    system = request["messages"][0]["content"]
    values = db_rows(
        deployment.dsn,
        "SELECT b.value FROM blocks_agents ba JOIN block b ON b.id = ba.block_id WHERE ba.agent_id = %s",
        (agent["v1_id"],),
    )
    assert values and all(value in system for (value,) in values)
    history = json.dumps(request["messages"][1:])
    last_user = [r for r in db_messages(deployment.dsn, agent["v1_id"]) if r[2] == "user"][-1]
    assert last_user[3][0] in history  # the in-context V1 messages are in the request


def test_live_database_gives_the_same_bytes_as_the_snapshot(
    deployment: LettaDatabase, migrated: tuple[Path, dict[str, Any], Path], tmp_path: Path
) -> None:
    backend, report, _ = migrated
    done = cli("--json", "migrate", str(tmp_path / "live"), "--db", deployment.dsn, "--all")
    assert done.returncode == 0, done.stderr
    live = json.loads(done.stdout)
    assert live["source"] == "database"
    assert [(a["id"], a["memory_commit"]) for a in live["agents"]] == [
        (a["id"], a["memory_commit"]) for a in report["agents"]
    ]
    for agent in report["agents"]:
        for conversation in agent["conversations"]:
            for name in ("conversation.json", "messages.jsonl", "manifest.json"):
                original = backend / conversation["path"] / name
                if original.exists():
                    assert (
                        tmp_path / "live" / conversation["path"] / name
                    ).read_bytes() == original.read_bytes()


def test_dry_run_second_run_refusal_and_force(
    deployment: LettaDatabase, migrated: tuple[Path, dict[str, Any], Path], tmp_path: Path
) -> None:
    _, report, repo = migrated
    target = tmp_path / "backend"
    base = ["migrate", str(target), "--repo", str(repo), "--snapshot", "latest", "--name", "lb-agent-1*"]
    plan = cli("--json", *base, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert {a["state"] for a in json.loads(plan.stdout)["agents"]} == {"new"} and not target.exists()
    assert cli(*base).returncode == 0
    before = sorted(str(p.relative_to(target)) for p in target.rglob("*") if ".git" not in p.parts)
    again = cli("--json", *base)
    assert again.returncode == 0 and {a["state"] for a in json.loads(again.stdout)["agents"]} == {"unchanged"}
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if ".git" not in p.parts) == before
    agent = next(a for a in report["agents"] if a["name"] == "lb-agent-10")
    record = target / layout.agent_record_path(agent["id"])
    record.write_text(record.read_text().replace("lb-agent-10", "renamed in Letta Code"))
    refused = cli(*base)
    assert refused.returncode == 5 and "--force" in refused.stderr
    assert "renamed in Letta Code" in record.read_text()
    forced = cli("--json", *base, "--force")
    assert forced.returncode == 0
    assert json.loads(record.read_text())["name"] == "lb-agent-10"
    assert not list(target.glob(".lifeboat-migrate-*"))


def test_a_failure_while_building_leaves_the_target_untouched(
    migrated: tuple[Path, dict[str, Any], Path], tmp_path: Path
) -> None:
    _, _, repo = migrated
    target = tmp_path / "backend"
    base = ["migrate", str(target), "--repo", str(repo), "--snapshot", "latest", "--name", "lb-agent-1*"]
    failed = cli(*base, env={"LIFEBOAT_MIGRATE_FAULT": "build:5"})
    assert failed.returncode == 1 and "injected fault" in failed.stderr
    assert sorted(p.name for p in target.iterdir()) == [".lifeboat-migrate.lock"]


def test_a_kill_while_installing_leaves_whole_agents_and_a_rerun_finishes(
    migrated: tuple[Path, dict[str, Any], Path], tmp_path: Path
) -> None:
    _, report, repo = migrated
    target = tmp_path / "backend"
    base = ["migrate", str(target), "--repo", str(repo), "--snapshot", "latest", "--name", "lb-agent-1*"]
    killed = cli(*base, env={"LIFEBOAT_MIGRATE_FAULT": "install:3"})
    assert killed.returncode == -9
    records = sorted(p.name for p in (target / "agents").iterdir())
    assert len(records) == 3  # three complete agents, the others not visible at all
    for agent in report["agents"]:
        if (target / layout.agent_record_path(agent["id"])).exists():
            assert all((target / path).exists() for path in agent["paths"])
    finished = cli("--json", *base)
    assert finished.returncode == 0, finished.stderr
    states = [a["state"] for a in json.loads(finished.stdout)["agents"]]
    assert states.count("unchanged") == 3 and states.count("written") == len(states) - 3
    assert not list(target.glob(".lifeboat-migrate-*"))  # the killed run's staging directory is gone
    clean = tmp_path / "clean"
    assert cli(*base[:1], str(clean), *base[2:]).returncode == 0
    assert _tree(target) == _tree(clean)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.parts and not p.name.startswith(".lifeboat")
    }
