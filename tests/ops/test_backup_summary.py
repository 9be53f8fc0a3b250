"""What a backup reports: the runs in flight at its instant come from its own catalog read."""

from __future__ import annotations

import psycopg

from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository


def test_the_summary_lists_the_runs_in_flight_the_manifest_records(letta_db, repo: Repository) -> None:
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute("SET search_path = letta, public")
        (run_id,) = conn.execute(
            "UPDATE runs SET status = 'running' WHERE id = (SELECT min(id) FROM runs) RETURNING id"
        ).fetchone()  # type: ignore[misc]
    result = run_backup(repo, letta_db.admin_dsn)
    reported = result.summary()["runs_in_flight"]
    assert run_id in [run["run_id"] for run in reported]
    stored = layout.runs_in_flight(repo.load_snapshot(result.snapshot.id))
    assert reported == [run.model_dump(mode="json") for run in stored]
