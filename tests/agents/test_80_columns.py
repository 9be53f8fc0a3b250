"""Output a person reads, on the real deployment's data: with COLUMNS=80, `snapshots`, `agents list`
and the agent-restore plan fit without wrapping, show full local dates with their zone, and the
short ids they show work as input."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from agents_testing import lifeboat_json
from ops_testing import cli

from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository

NARROW = {"COLUMNS": "80", "TZ": "Europe/Berlin"}
DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST)")


def _fits(text: str) -> list[str]:
    lines = text.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, text
    return lines


def test_80_columns_local_dates_and_usable_short_ids(letta_db, repo: Repository) -> None:
    snapshot = run_backup(repo, letta_db.admin_dsn, tags=["nightly"]).snapshot
    path = str(repo.backend.url).removeprefix("file://")
    local = snapshot.time.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M:%S %Z")

    listed = cli("snapshots", "--repo", path, env=NARROW)
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in _fits(listed.stdout) if snapshot.short_id in line]
    assert local in row and "nightly" in row and letta_db.dbname in row  # one line: no wrapping
    long = cli("snapshots", "--repo", path, "--long", env={**NARROW, "COLUMNS": "200"})
    assert snapshot.id in long.stdout

    agents = cli("agents", "list", "--repo", path, env=NARROW)
    assert agents.returncode == 0, agents.stderr
    lines = _fits(agents.stdout)
    agent_id = letta_db.facts["sleeptime"]["agent_id"]
    short = agent_id.split("-")[0] + "-" + agent_id.split("-")[1][:8]
    [row] = [line for line in lines if line.lstrip().startswith(short + " ")]
    assert DATE.search(row), row  # last activity: a full local date with its zone, on the agent's line
    assert f"in snapshot {snapshot.short_id} ({local})" in agents.stdout

    args = ["restore", "--repo", path, "--agent", short, "--db", letta_db.dsn, "--dry-run"]
    plan = cli(*args, env=NARROW)
    assert plan.returncode == 0, plan.stderr
    lines = _fits(plan.stdout)
    assert any(line.lstrip().startswith(short + " ") for line in lines)  # the agent, by its short id
    assert any(local in line for line in lines)  # which snapshot, when (local time, zone)
    result, as_json = lifeboat_json(*args)
    assert result.returncode == 0 and agent_id in {a["id"] for a in as_json["agents"]}
    assert datetime.fromisoformat(as_json["snapshot_chosen"]["time"]) == snapshot.time  # JSON stays ISO/UTC
