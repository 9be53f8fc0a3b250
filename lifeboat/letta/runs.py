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
