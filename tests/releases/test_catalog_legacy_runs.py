"""The agent catalog of a Letta < 0.12 deployment (runs are ``jobs`` rows naming the agent in JSON):
the one-pass newest-run join gives, column for column, what the per-agent subquery gave — ties on
created_at, a NULL created_at, jobs of another type or of no agent, an agent without jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from lifeboat.letta.catalog import CATALOG_SQL, catalog_sql
from lifeboat.letta.locate import find_letta_schema, use_letta_schema
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import Cluster

# What catalog_sql gave before (one correlated subquery per agent): the reference.
_PER_AGENT = CATALOG_SQL.replace(
    "(SELECT r.status FROM runs r WHERE r.agent_id = a.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1)",
    "(SELECT j.status FROM jobs j WHERE j.job_type = 'run' AND j.metadata_::jsonb ->> 'agent_id' = a.id "
    "ORDER BY j.created_at DESC, j.id DESC LIMIT 1)",
)


def _one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None and row[0] is not None
    return row[0]


def _add_job(conn: psycopg.Connection[Any], like: Any, job_id: str, agent: str | None, **values: Any) -> None:
    row = {**like, "id": job_id, "metadata_": {"agent_id": agent} if agent else {}, **values}
    conn.execute("INSERT INTO jobs SELECT (jsonb_populate_record(NULL::jobs, %s)).*", (Jsonb(row),))


def _add_bare_agent(conn: psycopg.Connection[Any], like: str) -> None:
    """An agent with no messages, jobs, blocks, tags or passages."""
    conn.execute(
        "INSERT INTO agents SELECT (jsonb_populate_record(NULL::agents, to_jsonb(a) || "
        "jsonb_build_object('id', 'agent-bare', 'name', 'bare', 'message_ids', NULL))).* "
        "FROM agents a WHERE a.id = %s",
        (like,),
    )


def test_legacy_catalog_matches_the_per_agent_subquery(
    pg_cluster: Cluster, release_db_factory: Callable[[str, Cluster], LettaDatabase]
) -> None:
    source = release_db_factory("0.11.7", pg_cluster)
    with psycopg.connect(source.admin_dsn, autocommit=True) as conn:
        schema = find_letta_schema(conn)
        assert schema is not None
        use_letta_schema(conn, schema)
        tables = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        }
        assert "runs" not in tables and "jobs" in tables  # the legacy path
        ids = [r[0] for r in conn.execute("SELECT id FROM agents ORDER BY id")]
        like = _one(conn, "SELECT to_jsonb(j) FROM jobs j WHERE job_type = 'run' LIMIT 1")
        late = _one(conn, "SELECT (max(created_at) + interval '1 day')::text FROM jobs")
        assert len(ids) >= 3
        _add_job(conn, like, "job-tie-a", ids[0], status="failed", created_at=late)
        _add_job(conn, like, "job-tie-b", ids[0], status="completed", created_at=late)  # tie: higher id wins
        _add_job(conn, like, "job-no-time", ids[1], status="cancelled", created_at=None)  # NULLs sort first
        _add_job(conn, like, "job-not-a-run", ids[2], status="pending", created_at=late, job_type="job")
        _add_job(conn, like, "job-no-agent", None, status="running", created_at=late)
        _add_bare_agent(conn, ids[0])

        rows = conn.execute(catalog_sql(tables)).fetchall()
        assert rows == conn.execute(_PER_AGENT).fetchall()
        status = {row[0]: row[9] for row in rows}
        assert status[ids[0]] == "completed" and status[ids[1]] == "cancelled"
        assert status[ids[2]] != "pending" and status["agent-bare"] is None
