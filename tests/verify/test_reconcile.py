"""reconcile on the real deployment: crash leftovers, drift, Redis keys; dry run predicts, apply is idempotent."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from lifeboat.letta.checks import Severity
from lifeboat.letta.repairs import NOTE_KEY, RepairOptions
from lifeboat.ops.reconcile import reconcile_database
from lifeboat.ops.verify import verify_database
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.redis_server import RedisServer

STOPPED = RepairOptions(server_stopped=True)


def _ids(report: Any, repair: str) -> set[str]:
    return {change.id for change in report.changed if change.repair == repair}


def _crash(facts: dict[str, Any]) -> tuple[set[str], set[str]]:
    return {c["run_id"] for c in facts["crashed"]}, {c["pending_step_id"] for c in facts["crashed"]}


def test_young_runs_are_left_alone_on_a_live_server(letta_db: LettaDatabase) -> None:
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute("UPDATE runs SET updated_at = now() WHERE status IN ('created', 'running')")
        conn.execute("UPDATE steps SET updated_at = now() WHERE status = 'PENDING'")
    report = reconcile_database(
        letta_db.dsn, apply=True, options=RepairOptions(older_than=timedelta(minutes=5))
    )
    assert report.changed == [] and report.planned == []


def test_dry_run_plans_without_changing_then_apply_fixes_and_second_run_is_empty(
    letta_db: LettaDatabase,
) -> None:
    runs, steps = _crash(letta_db.facts)

    dry = reconcile_database(letta_db.dsn, apply=False, options=STOPPED)
    assert {c.id for c in dry.planned if c.repair == "runs.fail_stale"} == runs
    assert {c.id for c in dry.planned if c.repair == "steps.fail_pending"} == steps
    assert dry.changed == [] and not dry.applied
    assert verify_database(letta_db.dsn).codes(Severity.WARNING) == {"runs.in_flight", "steps.pending"}

    applied = reconcile_database(letta_db.dsn, apply=True, options=STOPPED)
    assert _ids(applied, "runs.fail_stale") == runs
    assert _ids(applied, "steps.fail_pending") == steps
    assert applied.skipped == [] and applied.unrepairable == []

    with psycopg.connect(letta_db.dsn) as conn:
        rows = conn.execute(
            "SELECT status, stop_reason, completed_at IS NOT NULL, metadata_::text FROM runs WHERE id = ANY (%s)",
            (sorted(runs),),
        ).fetchall()
        step_states = conn.execute(
            "SELECT DISTINCT status::text FROM steps WHERE id = ANY (%s)", (sorted(steps),)
        )
        assert {row[0] for row in step_states} == {"FAILED"}
    for status, stop_reason, completed, metadata in rows:
        assert (status, stop_reason, completed) == ("failed", "error", True)
        assert json.loads(metadata)[NOTE_KEY]["by"] == "lifeboat reconcile"

    report = verify_database(letta_db.dsn)
    assert report.ok and report.codes(Severity.WARNING) == set()
    again = reconcile_database(letta_db.dsn, apply=True, options=STOPPED)
    assert again.planned == [] and again.changed == []


def _break_contexts_and_groups(admin_dsn: str) -> dict[str, Any]:
    """A dangling id, a foreign id, a repeat and a misplaced system message; a drifted group."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        agent_id, text = conn.execute(
            "SELECT id, message_ids::text FROM agents WHERE json_array_length(message_ids) >= 3 "
            "AND agent_type = 'letta_v1_agent' ORDER BY id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        original = json.loads(text)
        foreign = conn.execute(
            "SELECT id FROM messages WHERE agent_id <> %s AND conversation_id IS NULL LIMIT 1", (agent_id,)
        ).fetchone()[0]  # type: ignore[index]
        broken = [original[1], original[0], f"message-{uuid.uuid4()}", *original[2:], foreign, original[-1]]
        conn.execute("UPDATE agents SET message_ids = %s::json WHERE id = %s", (json.dumps(broken), agent_id))
        group_id, member = conn.execute("SELECT group_id, agent_id FROM groups_agents LIMIT 1").fetchone()  # type: ignore[misc]
        conn.execute("DELETE FROM groups_agents WHERE group_id = %s", (group_id,))
        conn.execute("SELECT setval('message_seq_id', 5)")
    return {"agent_id": agent_id, "original": original, "group_id": group_id, "member": member}


def test_context_group_and_sequence_repairs(letta_db: LettaDatabase) -> None:
    broken = _break_contexts_and_groups(letta_db.admin_dsn)
    before = verify_database(letta_db.dsn)
    assert {"message_ids.dangling", "message_ids.foreign", "message_ids.duplicate", "message_ids.system_first",
            "groups.agent_ids_drift", "sequence.behind"} <= before.codes(Severity.ERROR)  # fmt: skip

    applied = reconcile_database(letta_db.dsn, apply=True, options=RepairOptions())
    assert _ids(applied, "message_ids.clean") == {broken["agent_id"]}
    assert _ids(applied, "groups.sync_members") == {broken["group_id"]}
    assert _ids(applied, "sequence.bump") == {"message_seq_id"}
    with psycopg.connect(letta_db.dsn) as conn:
        repaired = conn.execute(
            "SELECT message_ids FROM agents WHERE id = %s", (broken["agent_id"],)
        ).fetchone()
        members = conn.execute(
            "SELECT agent_id FROM groups_agents WHERE group_id = %s", (broken["group_id"],)
        )
        assert [row[0] for row in members] == [broken["member"]]
    assert repaired is not None and repaired[0] == broken["original"]  # order, system first, no strays

    after = verify_database(letta_db.dsn)
    assert after.ok, [f.model_dump() for f in after.errors()]
    again = reconcile_database(letta_db.dsn, apply=True, options=RepairOptions())
    assert [c for c in again.planned if c.repair != "runs.fail_stale"] == []


def _lock(client: Any, key: str, age_seconds: int) -> None:
    client.set(key, f"token-{uuid.uuid4()}", px=(300 - age_seconds) * 1000)


def _stream(client: Any, run_id: str, *, complete: bool) -> None:
    client.xadd(f"sse:run:{run_id}", {"seq_id": 1, "data": "data: {}\n\n"})
    if complete:
        client.xadd(f"sse:run:{run_id}", {"seq_id": 2, "data": "data: [DONE]\n\n", "complete": "true"})


def _seed_redis(client: Any, letta_db: LettaDatabase) -> dict[str, set[str]]:
    """Leftovers of the crash next to healthy keys; returns the keys expected gone / kept."""
    facts = letta_db.facts
    crashed = facts["crashed"][0]
    with psycopg.connect(letta_db.dsn) as conn:
        completed_run, completed_agent = conn.execute(
            "SELECT id, agent_id FROM runs WHERE status = 'completed' ORDER BY id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        unmarked_run = conn.execute(
            "SELECT id FROM runs WHERE status = 'completed' AND id <> %s ORDER BY id LIMIT 1",
            (completed_run,),
        ).fetchone()[0]  # type: ignore[index]
    conversation = facts["conversation"]["conversation_id"]
    gone = {
        f"conversation:lock:{crashed['agent_id']}",  # its run is failed by the repair
        f"conversation:lock:{conversation}",  # no run at all, held for 60 s
        f"agent:send_message:run_id:{crashed['agent_id']}",  # points at the dead run
        "otid:run:crash-otid",
        "otid:run:vanished-otid",
        f"sse:run:{crashed['run_id']}",  # no completion marker, run dead
        f"sse:run:{unmarked_run}",  # finished run whose stream never completed
    }
    kept = {
        f"conversation:lock:agent-{uuid.uuid4()}",  # 5 s old: a request may be inserting its run
        f"agent:send_message:run_id:{completed_agent}",  # points at a finished run
        "otid:run:finished-otid",  # duplicate detection for a finished run
        f"sse:run:{completed_run}",  # replayable
        "letta_cache:unrelated",
    }
    _lock(client, f"conversation:lock:{crashed['agent_id']}", 40)
    _lock(client, f"conversation:lock:{conversation}", 60)
    _lock(client, next(k for k in kept if k.startswith("conversation:lock:")), 5)
    client.set(f"agent:send_message:run_id:{crashed['agent_id']}", crashed["run_id"])
    client.set(f"agent:send_message:run_id:{completed_agent}", completed_run)
    client.set("otid:run:crash-otid", crashed["run_id"], ex=10800)
    client.set("otid:run:vanished-otid", f"run-{uuid.uuid4()}", ex=10800)
    client.set("otid:run:finished-otid", completed_run, ex=10800)
    client.set("letta_cache:unrelated", "x")
    _stream(client, crashed["run_id"], complete=False)
    _stream(client, unmarked_run, complete=False)
    _stream(client, completed_run, complete=True)
    return {"gone": gone, "kept": kept}


def test_redis_leftovers(letta_db: LettaDatabase, redis_server: RedisServer) -> None:
    from lifeboat.ops.reconcile import redis_client

    client = redis_client(url=redis_server.url)
    expected = _seed_redis(client, letta_db)
    options = RepairOptions(older_than=timedelta(0))

    dry = reconcile_database(letta_db.dsn, apply=False, options=options, redis=client)
    assert {c.id for c in dry.planned if c.target == "redis"} == expected["gone"]
    assert all(client.exists(key) for key in expected["gone"] | expected["kept"])

    applied = reconcile_database(letta_db.dsn, apply=True, options=options, redis=client)
    assert {c.id for c in applied.changed if c.target == "redis"} == expected["gone"]
    assert not any(client.exists(key) for key in expected["gone"])
    assert all(client.exists(key) for key in expected["kept"])
    again = reconcile_database(letta_db.dsn, apply=True, options=options, redis=client)
    assert again.planned == []


@pytest.mark.letta_server
def test_crashed_agents_answer_again_after_reconcile(
    letta_db: LettaDatabase, letta_server: Any, redis_server: RedisServer
) -> None:
    """The crash fixture end to end: verify sees the leftovers, reconcile fixes them, Letta works."""
    from lifeboat.ops.reconcile import redis_client

    runs, steps = _crash(letta_db.facts)
    client = redis_client(url=redis_server.url)
    for crashed in letta_db.facts["crashed"]:  # what the killed server left in its Redis
        client.set(f"agent:send_message:run_id:{crashed['agent_id']}", crashed["run_id"])
        client.set(f"otid:run:{uuid.uuid4()}", crashed["run_id"], ex=10800)

    before = verify_database(letta_db.dsn)
    in_flight = {f.check: f for f in before.findings if f.severity is Severity.WARNING}
    assert set(in_flight["runs.in_flight"].ids) == runs
    assert set(in_flight["steps.pending"].ids) == steps

    fixed = reconcile_database(letta_db.dsn, apply=True, options=STOPPED, redis=client)
    assert _ids(fixed, "runs.fail_stale") == runs and _ids(fixed, "steps.fail_pending") == steps
    assert len([c for c in fixed.changed if c.target == "redis"]) == 4

    server = letta_server(letta_db.dsn, redis_port=redis_server.port)
    for crashed in letta_db.facts["crashed"]:
        reply = server.post(
            f"/v1/agents/{crashed['agent_id']}/messages",
            {"messages": [{"role": "user", "content": "Are you back?"}]},
        )
        assert reply["stop_reason"]["stop_reason"] == "end_turn", reply
        assert any(m.get("message_type") == "assistant_message" for m in reply["messages"]), reply

    after = verify_database(letta_db.dsn)
    assert after.ok, [f.model_dump() for f in after.errors()]
    assert not after.codes(Severity.WARNING) & {"runs.in_flight", "steps.pending"}
    again = reconcile_database(letta_db.dsn, apply=True, options=RepairOptions(), redis=client)
    assert again.changed == [] and again.planned == []
