"""Agent-level restore on the real deployment's database (no Letta server needed): dry run,
atomicity under injected faults, partly corrupted agents, refusals, sequence ids, Redis locks,
copies into another organization, and diff between snapshots."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from agents_testing import agent_rows, dying_restore, lifeboat_json, sequence_value
from ops_testing import cli, table_digests

from lifeboat.errors import UnsafeRestore
from lifeboat.letta.checks import Severity
from lifeboat.ops.agent_restore import Action, Mode, Options, SharedPolicy, run_agent_restore
from lifeboat.ops.backup import run_backup
from lifeboat.ops.verify import verify_database
from lifeboat.repo.repository import Repository
from lifeboat.settings import RedisTarget


def _repo_path(repo: Repository) -> str:
    return str(repo.backend.url).removeprefix("file://")


def _delete_like_letta(dsn: str, agent_ids: list[str]) -> None:
    """What Letta's delete does to the rows (sleeptime group first, ORM-cascaded tags and runs)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM letta.groups WHERE manager_agent_id = ANY(%s)", (agent_ids,))
        conn.execute("DELETE FROM letta.agents_tags WHERE agent_id = ANY(%s)", (agent_ids,))
        conn.execute("DELETE FROM letta.runs WHERE agent_id = ANY(%s)", (agent_ids,))
        conn.execute("DELETE FROM letta.agents WHERE id = ANY(%s)", (agent_ids,))


def test_dry_run_prints_the_plan_and_changes_nothing(letta_db, repo: Repository) -> None:
    """Must-show 6."""
    sleeptime = letta_db.facts["sleeptime"]
    run_backup(repo, letta_db.admin_dsn)
    _delete_like_letta(letta_db.admin_dsn, [sleeptime["agent_id"], sleeptime["sibling_id"]])
    before, sequence = table_digests(letta_db.admin_dsn), sequence_value(letta_db.admin_dsn)
    args = ["restore", "--repo", _repo_path(repo), "--agent", sleeptime["agent_id"], "--db", letta_db.dsn]

    result, plan = lifeboat_json(*args, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert plan["dry_run"] is True
    assert {a["id"] for a in plan["agents"]} == {sleeptime["agent_id"], sleeptime["sibling_id"]}
    rows = {t["table"]: t for t in plan["tables"]}
    assert rows["messages"]["write"] == rows["messages"]["snapshot_rows"] > 0
    assert rows["agents"]["write"] == 2 and rows["groups"]["write"] == 1
    decisions = {(e["kind"], e["label"]): e for e in plan["entities"]}
    assert decisions[("block", "team")]["action"] == "keep"  # shared with other agents, still there
    assert decisions[("block", "team")]["used_by"] >= 5 and decisions[("block", "team")]["affects"] == []
    assert decisions[("block", "human")]["action"] == "overwrite"  # the agent's own block
    assert decisions[("tool", "lookup_order")]["action"] == "keep"

    human = cli(*args, "--dry-run", env={"COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    for expected in (
        "would restore 2 agent(s)",
        "rows per table",
        "messages",
        "team",
        "left as they are now",
    ):
        assert expected in human.stdout
    assert table_digests(letta_db.admin_dsn) == before
    assert sequence_value(letta_db.admin_dsn) == sequence


@pytest.mark.parametrize("how", ["error", "kill"])
def test_a_fault_mid_apply_leaves_the_database_unchanged(letta_db, repo: Repository, how: str) -> None:
    """Must-show 5: a forced error, or SIGKILL of the restore process, after half the tables."""
    agent_id = letta_db.facts["sleeptime"]["agent_id"]
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        conn.execute("UPDATE letta.block SET value = 'clobbered' WHERE label = 'human'")
        conn.execute("DELETE FROM letta.messages WHERE agent_id = %s AND role = 'user'", (agent_id,))
    before = table_digests(letta_db.admin_dsn)
    result = dying_restore(
        15, how, "restore", "--repo", _repo_path(repo), "--agent", agent_id, "--db", letta_db.dsn
    )
    if how == "kill":
        assert result.returncode == -9
    else:
        assert result.returncode == 1 and "injected fault" in result.stderr
    assert table_digests(letta_db.admin_dsn) == before


def test_a_partly_corrupted_agent_comes_back_exactly(letta_db, repo: Repository) -> None:
    """Memory overwritten, messages gone, the context list broken, a file detached, a tag and a
    secret removed: restoring in place makes every table identical to the snapshot's instant."""
    agent_id = letta_db.facts["secret"]["agent_id"]
    run_backup(repo, letta_db.admin_dsn)
    snapshot_time = table_digests(letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        conn.execute(
            "UPDATE letta.block SET value = 'overwritten' WHERE id IN "
            "(SELECT block_id FROM letta.blocks_agents WHERE agent_id = %s AND block_label = 'persona')",
            (agent_id,),
        )
        conn.execute(
            "DELETE FROM letta.messages WHERE id IN (SELECT id FROM letta.messages WHERE agent_id = %s "
            "AND role <> 'system' ORDER BY sequence_id DESC LIMIT 3)",
            (agent_id,),
        )
        conn.execute("UPDATE letta.agents SET message_ids = '[\"message-gone\"]' WHERE id = %s", (agent_id,))
        conn.execute("DELETE FROM letta.files_agents WHERE agent_id = %s", (agent_id,))
        conn.execute("DELETE FROM letta.agents_tags WHERE agent_id = %s AND tag LIKE 'team-%%'", (agent_id,))
        conn.execute("DELETE FROM letta.agent_environment_variables WHERE agent_id = %s", (agent_id,))
    report = run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id])
    assert table_digests(letta_db.admin_dsn) == snapshot_time
    assert not report.warnings
    assert report.read.bytes > 0 and report.read.snapshot_bytes >= report.read.bytes


def test_refuses_an_agent_with_an_active_run_unless_forced(letta_db, repo: Repository) -> None:
    crashed = letta_db.facts["crashed"][0]
    run_backup(repo, letta_db.admin_dsn)
    args = ["restore", "--repo", _repo_path(repo), "--agent", crashed["agent_id"], "--db", letta_db.dsn]
    refused = cli(*args)
    assert refused.returncode == 5, refused.stderr
    assert "active run" in refused.stderr and crashed["run_id"] in refused.stderr
    result, report = lifeboat_json(*args, "--force")
    assert result.returncode == 0, result.stderr
    assert any("in flight at the snapshot instant" in w for w in report["warnings"])


def test_renumbers_sequence_ids_taken_since_the_snapshot(letta_db, repo: Repository) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-04"]
    other = letta_db.facts["agent_ids"]["lb-agent-05"]
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        before = conn.execute(
            "SELECT id, sequence_id FROM letta.messages WHERE agent_id = %s ORDER BY sequence_id", (agent_id,)
        ).fetchall()
        conn.execute("DELETE FROM letta.messages WHERE agent_id = %s", (agent_id,))
        # another agent's message now holds one of the deleted sequence ids
        conn.execute(
            "INSERT INTO letta.messages (id, agent_id, role, content, tool_calls, organization_id, sequence_id) "
            "SELECT %s, %s, 'user', '[]', '[]', organization_id, %s FROM letta.agents WHERE id = %s",
            (f"message-{uuid.uuid4()}", other, before[2][1], other),
        )
    report = run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id])
    assert any("renumbered" in w for w in report.warnings)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        after = conn.execute(
            "SELECT id, sequence_id FROM letta.messages WHERE agent_id = %s ORDER BY sequence_id", (agent_id,)
        ).fetchall()
        high = conn.execute("SELECT max(sequence_id) FROM letta.messages").fetchone()
        last = conn.execute("SELECT last_value FROM letta.message_seq_id").fetchone()
    assert [r[0] for r in after] == [r[0] for r in before]  # same messages, same order
    assert min(r[1] for r in after) > max(r[1] for r in before)
    assert high is not None and last is not None and last[0] >= high[0]


def test_holds_lettas_lock_and_invalidates_the_agents_redis_keys(
    letta_db, repo: Repository, redis_server
) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-06"]
    run_backup(repo, letta_db.admin_dsn)
    client = redis_server.client()
    target = RedisTarget("127.0.0.1", redis_server.port)
    lock = client.lock(f"conversation:lock:{agent_id}", timeout=30)
    assert lock.acquire(blocking=False)  # a request of the agent is being processed
    with pytest.raises(UnsafeRestore, match="Letta holds conversation:lock"):
        run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id], redis=target)
    lock.release()
    client.set(f"agent:send_message:run_id:{agent_id}", "run-stale")
    report = run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id], redis=target)
    assert report.redis and "held 1 Letta lock" in report.redis
    assert client.get(f"agent:send_message:run_id:{agent_id}") is None
    assert client.get(f"conversation:lock:{agent_id}") is None  # released


def test_copy_into_another_organization(letta_db, repo: Repository) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-00"]
    org = f"org-{uuid.uuid4()}"
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        conn.execute(
            "INSERT INTO letta.organizations (id, name, privileged_tools) VALUES (%s, 'second org', false)",
            (org,),
        )
    original = agent_rows(letta_db.admin_dsn, [agent_id])
    errors_before = verify_database(letta_db.admin_dsn).codes(Severity.ERROR)

    report = run_agent_restore(
        repo, letta_db.dsn, agent_ids=[agent_id], options=Options(mode=Mode.COPY, org=org, suffix=" [b]")
    )
    copy_id = report.agents[0].new_id
    assert copy_id and copy_id != agent_id
    decisions = {(d.kind, d.label): d for d in report.entities}
    assert decisions[("block", "team")].action is Action.COPY  # nothing is shared across organizations
    assert decisions[("tool", "lookup_order")].action is Action.COPY
    with psycopg.connect(letta_db.admin_dsn) as conn:
        name, agent_org = conn.execute(
            "SELECT name, organization_id FROM letta.agents WHERE id = %s", (copy_id,)
        ).fetchone()  # type: ignore[misc]
        foreign = conn.execute(
            "SELECT count(*) FROM letta.block b JOIN letta.blocks_agents ba ON ba.block_id = b.id "
            "WHERE ba.agent_id = %s AND b.organization_id <> %s",
            (copy_id, org),
        ).fetchone()
        tool_orgs = conn.execute(
            "SELECT DISTINCT t.organization_id FROM letta.tools t JOIN letta.tools_agents ta ON ta.tool_id = t.id "
            "WHERE ta.agent_id = %s",
            (copy_id,),
        ).fetchall()
    assert name == "lb-agent-00 [b]" and agent_org == org
    assert foreign == (0,) and tool_orgs == [(org,)]
    assert agent_rows(letta_db.admin_dsn, [agent_id]) == original
    assert verify_database(letta_db.admin_dsn).codes(Severity.ERROR) <= errors_before


def test_diff_shows_a_memory_edit_between_two_snapshots(letta_db, repo: Repository) -> None:
    """Must-show 7."""
    agent_id = letta_db.facts["agent_ids"]["lb-agent-08"]
    first = run_backup(repo, letta_db.admin_dsn).snapshot.id
    with psycopg.connect(letta_db.admin_dsn) as conn:
        conn.execute(
            "UPDATE letta.block SET value = value || E'\\nUser8 moved to Lisbon.' WHERE id IN "
            "(SELECT block_id FROM letta.blocks_agents WHERE agent_id = %s AND block_label = 'human')",
            (agent_id,),
        )
    second = run_backup(repo, letta_db.admin_dsn).snapshot.id

    result, report = lifeboat_json("diff", "--repo", _repo_path(repo), first, second)
    assert result.returncode == 0, result.stderr
    assert [a["id"] for a in report["agents"]] == [agent_id] and report["unchanged"] == 20
    change = report["agents"][0]["blocks_changed"][0]
    assert change["label"] == "human" and "+User8 moved to Lisbon." in change["diff"]
    human = cli("diff", "--repo", _repo_path(repo), first[:8], second[:8], "--agent", agent_id)
    assert human.returncode == 0, human.stderr
    assert "block human" in human.stdout and "+User8 moved to Lisbon." in human.stdout


def _team_block(dsn: str) -> tuple[str, str]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT id, value FROM letta.block WHERE label = 'team'").fetchone()
    assert row is not None
    return row[0], row[1]


def test_shared_rows_are_kept_by_default_and_rolled_back_with_overwrite(letta_db, repo: Repository) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-02"]
    run_backup(repo, letta_db.admin_dsn)
    block_id, original = _team_block(letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        conn.execute("UPDATE letta.block SET value = 'edited by the team' WHERE id = %s", (block_id,))

    kept = run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id])
    team = next(d for d in kept.entities if d.id == block_id)
    assert team.action is Action.KEEP and _team_block(letta_db.admin_dsn)[1] == "edited by the team"

    rolled = run_agent_restore(
        repo, letta_db.dsn, agent_ids=[agent_id], options=Options(shared=SharedPolicy.OVERWRITE)
    )
    team = next(d for d in rolled.entities if d.id == block_id)
    others = {a for a in letta_db.facts["shared_blocks"][1]["agent_ids"]} - {agent_id}
    assert team.action is Action.OVERWRITE and set(team.affects) == others
    assert _team_block(letta_db.admin_dsn)[1] == original


def test_copy_with_own_copies_of_shared_blocks(letta_db, repo: Repository) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-02"]
    run_backup(repo, letta_db.admin_dsn)
    block_id, _value = _team_block(letta_db.admin_dsn)
    report = run_agent_restore(
        repo, letta_db.dsn, agent_ids=[agent_id], options=Options(mode=Mode.COPY, shared=SharedPolicy.COPY)
    )
    decisions = {d.id: d for d in report.entities}
    assert decisions[block_id].action is Action.COPY and decisions[block_id].target_id
    assert all(d.action is Action.REUSE for d in report.entities if d.kind == "tool")
    copy_id = report.agents[0].new_id
    with psycopg.connect(letta_db.admin_dsn) as conn:
        attached = {
            r[0]
            for r in conn.execute("SELECT block_id FROM letta.blocks_agents WHERE agent_id = %s", (copy_id,))
        }
        conversations = conn.execute(
            "SELECT count(*) FROM letta.conversations WHERE agent_id = %s", (copy_id,)
        ).fetchone()
        moved = conn.execute(
            "SELECT count(*) FROM letta.conversation_messages cm JOIN letta.messages m ON m.id = cm.message_id "
            "WHERE cm.agent_id = %s AND m.agent_id = %s AND m.conversation_id = cm.conversation_id",
            (copy_id, copy_id),
        ).fetchone()
    assert decisions[block_id].target_id in attached and block_id not in attached
    assert conversations == (1,) and moved is not None and moved[0] > 0  # the named conversation came along


def test_agents_list_and_selection_by_name_and_tag(letta_db, repo: Repository) -> None:
    run_backup(repo, letta_db.admin_dsn)
    result, listed = lifeboat_json("agents", "list", "--repo", _repo_path(repo), "--tag", "team-1")
    assert result.returncode == 0, result.stderr
    tagged = {a["name"] for a in listed["agents"]}
    assert tagged == {f"lb-agent-{i:02d}" for i in range(1, 20, 3)}
    result, live = lifeboat_json("agents", "list", "--db", letta_db.dsn, "--name", "lb-agent-03*")
    assert {a["name"] for a in live["agents"]} == {"lb-agent-03", "lb-agent-03-sleeptime"}
    assert live["source"] == "database"
    human = cli("agents", "list", "--repo", _repo_path(repo), "--name", "lb-agent-1?", env={"COLUMNS": "200"})
    assert human.returncode == 0 and "10 agent(s) in snapshot" in human.stdout

    result, plan = lifeboat_json(
        "restore", "--repo", _repo_path(repo), "--db", letta_db.dsn, "--tag", "team-1", "--name", "lb-agent-0*",
        "--dry-run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {a["name"] for a in plan["agents"]} == {"lb-agent-01", "lb-agent-04", "lb-agent-07"}
    unknown = cli("restore", "--repo", _repo_path(repo), "--db", letta_db.dsn, "--agent", "agent-nope")
    assert unknown.returncode == 2 and "not in the snapshot" in unknown.stderr
