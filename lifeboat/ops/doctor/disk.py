"""Doctor's disk check: is there room for a restore (database size or snapshot size x factor)?"""

from __future__ import annotations

import os
import shutil
import tempfile

from lifeboat.ops.doctor.report import DoctorInputs, Run, Status

RESTORE_SIZE_FACTOR = 1.5  # COPY text -> heap + indexes, when only the snapshot's size is known


def disk_check(run: Run, inputs: DoctorInputs) -> None:
    estimate = _restore_estimate(run)
    if estimate is None:
        run.add("disk", Status.SKIP, "no database size or snapshot to estimate a restore from")
        return
    places = {"drill scratch": str(inputs.scratch_dir or tempfile.gettempdir())}
    if run.data_directory and os.path.isdir(run.data_directory):
        places["PostgreSQL data directory"] = run.data_directory
    worst = Status.OK
    parts = []
    for label, path in places.items():
        free = shutil.disk_usage(path).free
        parts.append(f"{label} {path}: {free / 1e9:.1f} GB free")
        if free < estimate:
            worst = Status.FAIL
        elif free < 2 * estimate and worst is Status.OK:
            worst = Status.WARN
    message = f"{'; '.join(parts)}; a restore needs about {estimate / 1e9:.2f} GB"
    hint = (
        None if worst is Status.OK else "free disk space (or set TMPDIR for drills) before you need a restore"
    )
    run.add("disk", worst, message, hint, estimate_bytes=estimate)


def _restore_estimate(run: Run) -> int | None:
    candidates = []
    if run.database_bytes:
        candidates.append(run.database_bytes)
    if run.snapshot_bytes:
        candidates.append(int(run.snapshot_bytes * RESTORE_SIZE_FACTOR))
    return max(candidates) if candidates else None
