"""An in-place agent restore removes the agent's rows written since the snapshot also from the
tables Letta keeps no index on ``agent_id`` for (``steps``, ``step_metrics``, ``run_metrics``),
whose rows it finds with a SELECT of the whole table first (parallel workers may share it), and
leaves other agents' rows alone (real PostgreSQL, the cached Letta deployment)."""

from __future__ import annotations

import uuid

import psycopg
from ops_testing import table_digests

from lifeboat.ops.agent_restore import run_agent_restore
from lifeboat.ops.agent_restore.facts import live_schema
from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository


def _copy_row(conn: psycopg.Connection, table: str, changes: dict[str, object]) -> None:
    """Insert a copy of some row of ``table`` with ``changes`` (a new id at least)."""
    conn.execute(
        f"INSERT INTO letta.{table} SELECT (jsonb_populate_record(NULL::letta.{table}, "
        f"to_jsonb(t) || %s::jsonb)).* FROM (SELECT * FROM letta.{table} LIMIT 1) t",
        (psycopg.types.json.Jsonb(changes),),
    )


def _new_rows(dsn: str, agent_id: str, other_id: str) -> str:
    """Since the snapshot: a run of the agent with its metrics and two steps (one with no run)
    with metrics; a step of another agent."""
    run = f"run-{uuid.uuid4()}"
    steps = [f"step-{uuid.uuid4()}" for _ in range(3)]
    with psycopg.connect(dsn) as conn:
        for table in ("runs", "steps"):
            assert conn.execute(f"SELECT count(*) FROM letta.{table}").fetchone()[0] > 0  # type: ignore[index]
        _copy_row(conn, "runs", {"id": run, "agent_id": agent_id, "conversation_id": None})
        _copy_row(conn, "steps", {"id": steps[0], "agent_id": agent_id, "run_id": run})
        _copy_row(conn, "steps", {"id": steps[1], "agent_id": agent_id, "run_id": None})
        _copy_row(conn, "steps", {"id": steps[2], "agent_id": other_id, "run_id": None})
        conn.execute(
            "INSERT INTO letta.run_metrics (id, agent_id, organization_id) "
            "SELECT id, agent_id, organization_id FROM letta.runs WHERE id = %s",
            (run,),
        )
        conn.execute(
            "INSERT INTO letta.step_metrics (id, agent_id, run_id, organization_id) "
            "SELECT id, agent_id, run_id, organization_id FROM letta.steps WHERE id = ANY(%s)",
            (steps[:2],),
        )
    return steps[2]


def test_rows_written_since_the_snapshot_go_also_where_no_index_finds_them(
    letta_db, repo: Repository
) -> None:
    agent_id = letta_db.facts["secret"]["agent_id"]
    other_id = letta_db.facts["sleeptime"]["agent_id"]
    with psycopg.connect(letta_db.admin_dsn) as conn:
        live = live_schema(conn)
    for table in ("steps", "step_metrics", "run_metrics"):
        assert "agent_id" not in live.indexed.get(table, set())  # what the SELECT first is for
    assert "agent_id" in live.indexed["messages"]
    run_backup(repo, letta_db.admin_dsn)
    snapshot_time = table_digests(letta_db.admin_dsn)
    other_step = _new_rows(letta_db.admin_dsn, agent_id, other_id)
    report = run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id])
    removed = {plan.table: plan.remove for plan in report.tables}
    assert (removed["runs"], removed["run_metrics"], removed["steps"], removed["step_metrics"]) == (
        1,
        1,
        2,
        2,
    )
    with psycopg.connect(letta_db.admin_dsn) as conn:
        assert (
            conn.execute("DELETE FROM letta.steps WHERE id = %s", (other_step,)).rowcount == 1
        )  # left alone
    assert table_digests(letta_db.admin_dsn) == snapshot_time
