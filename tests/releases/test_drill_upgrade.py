"""Issue 14, must-show 4: ``drill --upgrade-to 0.16.8`` passes on every older snapshot and writes its
report; a broken upgrade fails the drill in phase ``upgrade`` with the migration named and leaves
nothing behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from ops_testing import cli, new_repo
from releases_testing import OLDER_RELEASES

from lifeboat.letta.revisions import HEAD_0_16_8
from lifeboat.ops.backup import run_backup
from lifeboat.ops.drill import DrillOptions, drill_history, run_drill
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import Cluster

Loader = Callable[[str, Cluster], LettaDatabase]


@pytest.mark.letta_server
@pytest.mark.parametrize("version", OLDER_RELEASES)
def test_drill_upgrade_to_0_16_8(
    version: str, pg_cluster: Cluster, release_db_factory: Loader, tmp_path: Path
) -> None:
    source = release_db_factory(version, pg_cluster)
    repo = new_repo(tmp_path / "repo")
    snapshot = run_backup(repo, source.admin_dsn).snapshot
    target = f"{source.dbname}_drill"
    before = set(pg_cluster.list_databases())
    options = DrillOptions(
        snapshot=snapshot.id,
        target_dsn=pg_cluster.dsn(target),
        upgrade_to="0.16.8",
        report_dir=tmp_path / "reports",
        flavor=pg_cluster.flavor,
    )
    report = run_drill(repo, options)
    assert report.ok, (report.failed_phase, report.reason)
    names = [phase.name for phase in report.phases]
    assert names.index("safety_point") < names.index("upgrade") < names.index("verify") < names.index("smoke")
    upgrade = report.upgrade
    assert upgrade is not None and upgrade["to_revision"] == HEAD_0_16_8
    assert len(upgrade["ran"]) == upgrade["migrations"] > 0 and upgrade["seconds"] > 0
    if version == "0.11.7":
        assert "567e9fe06270" in [c["revision"] for c in upgrade["data_changes"]]
    assert report.verify_summary.get("error", 0) == 0
    assert report.smoke is not None and report.smoke.reply_messages > 0
    assert report.smoke.agents_listed == source.facts["counts"]["agents"]
    written = json.loads(Path(report.files["json"]).read_text())
    assert written["upgrade"]["to_revision"] == HEAD_0_16_8
    assert Path(report.files["html"]).exists()
    assert [d.id for d in drill_history(repo)] == [report.id]
    assert set(pg_cluster.list_databases()) == before  # the drill's database and safety copy are gone


def test_broken_upgrade_fails_the_drill_and_leaves_nothing(
    pg_cluster: Cluster, release_db_factory: Loader, tmp_path: Path
) -> None:
    source = release_db_factory("0.14.0", pg_cluster)
    with psycopg.connect(source.dsn, autocommit=True) as conn:  # in the way of 0.16's conversations
        conn.execute("CREATE TABLE letta.conversations (id text PRIMARY KEY)")
    repo_dir = tmp_path / "repo"
    snapshot = run_backup(new_repo(repo_dir), source.admin_dsn).snapshot
    before = set(pg_cluster.list_databases())
    done = cli(
        "drill", "--json", "--snapshot", snapshot.id, "--repo", str(repo_dir),
        "--target", pg_cluster.dsn(f"{source.dbname}_broken"), "--upgrade-to", "0.16.8",
        "--trust-schema",  # the planted table is outside 0.14.0's record on purpose
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["failed_phase"] == "upgrade"
    assert "failed in migration" in report["reason"] and "onversation" in report["reason"]
    assert "letta:letta@" not in done.stdout + done.stderr
    assert set(pg_cluster.list_databases()) == before
    unknown = cli("drill", "--snapshot", snapshot.id, "--repo", str(repo_dir), "--upgrade-to", "9.9.9")
    assert unknown.returncode == 2 and "not a Letta release" in unknown.stderr
