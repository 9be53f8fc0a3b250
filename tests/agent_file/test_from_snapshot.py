"""`export --from-snapshot`: the agent as it was at backup time, identical to a live export then."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from lifeboat.ops.backup import run_backup
from lifeboat.ops.export import export_agents
from lifeboat.ops.export_snapshot import export_from_snapshot
from lifeboat.repo.kdf import KdfParams
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase

from .dbtools import rows


def _without_export_time(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("created_at")
    return doc


def test_export_from_snapshot_matches_live_export_at_backup_time(
    letta_db: LettaDatabase, tmp_path: Path
) -> None:
    agent = letta_db.facts["agent_ids"]["lb-agent-03"]  # with its sleeptime sibling and group
    at_backup = tmp_path / "live.af"
    export_agents(letta_db.dsn, [agent], at_backup, complete=True)
    repo = Repository.init(
        tmp_path / "repo", "pw", kdf=KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    )
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:  # the live agent moves on
        conn.execute(
            "UPDATE block SET value = 'changed' WHERE id IN (SELECT block_id FROM blocks_agents WHERE agent_id = %s)",
            [agent],
        )

    scratch = letta_db.cluster.dsn(f"{letta_db.dbname}_scratch")
    from_snapshot = tmp_path / "snap.af"
    report = export_from_snapshot(repo, "latest", [agent], from_snapshot, complete=True, scratch_dsn=scratch)
    assert report.files[0].agent_ids[0] == agent
    assert _without_export_time(from_snapshot) == _without_export_time(at_backup)
    assert not rows(
        letta_db.cluster.dsn(), "SELECT 1 FROM pg_database WHERE datname = %s", [f"{letta_db.dbname}_scratch"]
    )
