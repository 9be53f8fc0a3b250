"""Every command finds Letta's schema itself, whatever the session's search_path says.

A copy made with ``CREATE DATABASE … TEMPLATE`` keeps the tables but not init.sql's
``ALTER DATABASE … SET search_path`` (a database-level setting), so a superuser session there
resolves unqualified names in ``"$user", public``. Before lifeboat.letta.locate, ``export``
failed there with ``relation "agents" does not exist``, and ``export --from-snapshot`` of a
backup of such a database crashed with a traceback. Here the schema is also renamed, so neither
the database name nor ``letta`` points at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lifeboat.sandbox.deployment import LettaDatabase

LIFEBOAT = [sys.executable, "-m", "lifeboat"]
SCHEMA = "letta_data"


def _without_export_time(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("created_at")
    return doc


@pytest.fixture
def bare_copy(letta_db: LettaDatabase) -> Iterator[str]:
    """Admin DSN of a TEMPLATE copy of the deployment, its Letta schema renamed, no search_path."""
    name = f"{letta_db.dbname}_copy"
    letta_db.cluster.create_database(name, template=letta_db.dbname)
    try:
        dsn = letta_db.cluster.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA letta RENAME TO {SCHEMA}")
            path = conn.execute("SELECT current_schemas(false)").fetchone()
            assert path is not None and SCHEMA not in path[0]
        yield dsn
    finally:
        letta_db.cluster.drop_database(name)


def _cli(tmp_path: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LIFEBOAT_REPOSITORY": str(tmp_path / "repo"),
        "LIFEBOAT_PASSWORD": "pw",
        "LETTA_PG_URI": dsn,
    }
    done = subprocess.run([*LIFEBOAT, *args], capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def test_export_live_and_from_snapshot_without_search_path(
    letta_db: LettaDatabase, bare_copy: str, tmp_path: Path
) -> None:
    agent = letta_db.facts["agent_ids"]["lb-agent-03"]
    reference = tmp_path / "reference.af"
    _ok(_cli(tmp_path, letta_db.dsn, "export", "--agent", agent, "--complete", "-o", str(reference)))

    live = tmp_path / "live.af"
    _ok(_cli(tmp_path, bare_copy, "export", "--agent", agent, "--complete", "-o", str(live)))
    assert _without_export_time(live) == _without_export_time(reference)

    _ok(_cli(tmp_path, bare_copy, "init"))
    backup = json.loads(_ok(_cli(tmp_path, bare_copy, "--json", "backup")).stdout)
    assert backup["source"]["letta_schema"] == SCHEMA and backup["source"]["letta_revision"]
    from_snapshot = tmp_path / "snap.af"
    scratch = letta_db.cluster.dsn(f"{letta_db.dbname}_scratch")
    _ok(
        _cli(
            tmp_path, bare_copy, "export", "--from-snapshot", "latest", "--agent", agent, "--complete",
            "-o", str(from_snapshot), "--scratch", scratch,
        )
    )  # fmt: skip
    assert _without_export_time(from_snapshot) == _without_export_time(reference)


def test_agents_verify_reconcile_import_and_agent_restore_without_search_path(
    letta_db: LettaDatabase, bare_copy: str, tmp_path: Path
) -> None:
    listed = json.loads(_ok(_cli(tmp_path, bare_copy, "--json", "agents", "list", "--db", bare_copy)).stdout)
    assert len(listed["agents"]) == len(letta_db.facts["agent_ids"])

    verified = json.loads(_cli(tmp_path, bare_copy, "--json", "verify").stdout)
    assert verified["letta_schema"] == SCHEMA and verified["revision"]

    reconciled = json.loads(_ok(_cli(tmp_path, bare_copy, "--json", "reconcile")).stdout)
    assert reconciled["letta_schema"] == SCHEMA

    agent = letta_db.facts["agent_ids"]["lb-agent-05"]
    exported = tmp_path / "agent.af"
    _ok(_cli(tmp_path, bare_copy, "export", "--agent", agent, "-o", str(exported)))
    imported = json.loads(_ok(_cli(tmp_path, bare_copy, "--json", "import", str(exported))).stdout)
    assert len(imported["agent_ids"]) == 1

    _ok(_cli(tmp_path, bare_copy, "init"))
    _ok(_cli(tmp_path, bare_copy, "backup"))
    planned = _ok(
        _cli(tmp_path, bare_copy, "--json", "restore", "--agent", agent, "--mode", "in-place", "--dry-run")
    )
    assert json.loads(planned.stdout)
