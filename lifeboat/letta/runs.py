"""Run and step states (docs/LETTA.md §5)."""

from __future__ import annotations

ACTIVE_RUN_STATUSES = ("created", "running")
TERMINAL_RUN_STATUSES = ("completed", "failed", "cancelled")
PENDING_STEP_STATUS = "PENDING"  # steps.status is the PG enum stepstatus, upper-case member names

RUNS_IN_FLIGHT_SQL = """
SELECT r.id, r.agent_id, r.status, r.created_at::text,
       (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND s.status = 'PENDING') AS pending_steps
FROM runs r
WHERE r.status IN ('created', 'running')
ORDER BY r.created_at, r.id
"""

#: Before Letta 0.12 a run is a ``jobs`` row (job_type 'run', the agent in its metadata) and a
#: step points at it through ``steps.job_id``.
LEGACY_RUNS_IN_FLIGHT_SQL = """
SELECT j.id, j.metadata_::jsonb ->> 'agent_id', j.status, j.created_at::text,
       (SELECT count(*) FROM steps s WHERE s.job_id = j.id AND s.status = 'PENDING') AS pending_steps
FROM jobs j
WHERE j.job_type = 'run' AND j.status IN ('created', 'running')
ORDER BY j.created_at, j.id
"""


def runs_in_flight_sql(tables: set[str]) -> str:
    """The in-flight query for a schema with these tables."""
    return RUNS_IN_FLIGHT_SQL if "runs" in tables or "jobs" not in tables else LEGACY_RUNS_IN_FLIGHT_SQL
