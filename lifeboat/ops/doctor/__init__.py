"""``lifeboat doctor``: is this machine ready to back up and restore this Letta server?

One line per check, each with a fix hint when it is not ok. Checks never raise: a problem is a
``fail`` (backups or restores would not work) or a ``warn`` (they would, but look), and checks
that depend on an unreachable resource are ``skip``. The command exits 3 when any check fails.

The checks live by subject in this package (``database``, ``services``, ``repository``,
``disk``); ``report`` holds the models.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lifeboat.ops.doctor.database import database_checks
from lifeboat.ops.doctor.disk import disk_check
from lifeboat.ops.doctor.report import DoctorCheck, DoctorInputs, DoctorReport, Run, Status
from lifeboat.ops.doctor.repository import repository_checks
from lifeboat.ops.doctor.services import redis_check, server_check

__all__ = ["DoctorCheck", "DoctorInputs", "DoctorReport", "Status", "run_doctor"]


def run_doctor(inputs: DoctorInputs, *, now: datetime | None = None) -> DoctorReport:
    run = Run()
    if inputs.sources:
        described = "; ".join(f"{name} from {source}" for name, source in inputs.sources.items())
        run.add("settings", Status.OK, described, **inputs.sources)
    database_checks(run, inputs)
    server_check(run, inputs.server_url)
    redis_check(run, inputs.redis)
    repository_checks(run, inputs, now or datetime.now(UTC))
    disk_check(run, inputs)
    summary = {status.value: sum(1 for c in run.checks if c.status is status) for status in Status}
    return DoctorReport(ok=summary["fail"] == 0, summary=summary, checks=run.checks)
