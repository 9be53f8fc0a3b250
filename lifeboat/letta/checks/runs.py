"""Runs and steps left in flight (docs/LETTA.md §5): warnings, since they may be live work.

No reaper exists in Letta 0.16.8: a server killed mid-step leaves its run ``created``/``running``
and the step ``PENDING`` forever. In a hot database the younger ones may be genuinely running,
so verify only reports them; ``lifeboat reconcile`` fails the ones older than a threshold.
"""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings
from lifeboat.letta.runs import ACTIVE_RUN_STATUSES, PENDING_STEP_STATUS


def describe_age(seconds: object) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``40 s``: enough precision to tell a crash from live work."""
    if seconds is None:
        return "?"
    total = int(float(seconds))  # type: ignore[arg-type]
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@check(
    "runs",
    "Runs and steps left in flight",
    needs=("runs",),
    codes=("runs.in_flight", "steps.pending"),
)
def check_runs(ctx: CheckContext) -> Iterator[Finding]:
    oldest = ctx.scalar(
        sql.SQL(
            "SELECT extract(epoch FROM now() - min(created_at)) FROM runs WHERE status = ANY ({})"
        ).format(sql.Literal(list(ACTIVE_RUN_STATUSES)))
    )
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "runs.in_flight",
        "runs",
        sql.SQL("SELECT r.id, r.agent_id AS related FROM runs r WHERE r.status = ANY ({})").format(
            sql.Literal(list(ACTIVE_RUN_STATUSES))
        ),
        f"{{count}} run(s) are created/running (the oldest started {describe_age(oldest)} ago): live work, "
        "or leftovers of a server that died mid-step",
        "if the server is stopped (or they are older than any request), lifeboat reconcile --apply fails them",
    )
    if "steps" not in ctx.columns:
        return
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "steps.pending",
        "steps",
        sql.SQL("SELECT s.id, s.run_id AS related FROM steps s WHERE s.status::text = {}").format(
            sql.Literal(PENDING_STEP_STATUS)
        ),
        "{count} step(s) are PENDING: an LLM call in progress, or one that never finished",
        "lifeboat reconcile --apply marks stale ones FAILED",
    )
