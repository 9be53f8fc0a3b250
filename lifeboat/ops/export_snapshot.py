"""`lifeboat export --from-snapshot`: agent files from a lifeboat snapshot (filled in below)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lifeboat.errors import UsageError
from lifeboat.ops.export import ExportReport


def export_from_snapshot(
    repo: str | None,
    password_file: Path | None,
    snapshot: str,
    agent_ids: Sequence[str] | None,
    output: Path,
    *,
    complete: bool = False,
    admin_dsn: str | None = None,
) -> ExportReport:
    raise UsageError("--from-snapshot is not available yet")
