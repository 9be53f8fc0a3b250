"""Which snapshot a command uses when two Letta databases share one repository: ``latest`` within
``--source``/``--host``/``--tag`` filters, and an agent restore without a snapshot takes the newest
snapshot of its *target* database (on the real deployment's data, real PostgreSQL)."""

from __future__ import annotations

import socket
from pathlib import Path

from agents_testing import lifeboat_json
from ops_testing import PASSPHRASE, cli, new_repo

from lifeboat.ops.backup import run_backup
from lifeboat.ops.snapshot_filter import snapshot_filter
from lifeboat.repo.repository import LATEST, Repository


def _path(repo: Repository) -> str:
    return str(repo.backend.url).removeprefix("file://")


def test_latest_by_source_and_agent_restore_uses_the_target_databases_newest(
    letta_db, letta_db_factory, pg_cluster, repo: Repository, tmp_path: Path
) -> None:
    other = letta_db_factory(pg_cluster)
    mine = run_backup(repo, letta_db.admin_dsn, tags=["nightly"]).snapshot
    theirs = run_backup(repo, other.admin_dsn, tags=["nightly", "staging"]).snapshot  # the newest overall
    path = _path(repo)

    # latest = the newest snapshot the filters match (one definition for every command)
    assert repo.resolve_snapshot(LATEST) == theirs.id
    assert repo.resolve_snapshot(LATEST, snapshot_filter(sources=[letta_db.dbname])) == mine.id
    assert repo.resolve_snapshot(LATEST, snapshot_filter(tags=["nightly,staging"])) == theirs.id
    assert repo.resolve_snapshot(LATEST, snapshot_filter(tags=["staging", "nightly"])) == theirs.id
    for source, expected in ((letta_db.dbname, mine), (other.dbname, theirs)):
        result, listed = lifeboat_json("snapshots", "--repo", path, "--source", source)
        assert result.returncode == 0, result.stderr
        assert [s["id"] for s in listed] == [expected.id]
        result, agents = lifeboat_json("agents", "list", "--repo", path, "--source", source)
        assert result.returncode == 0, result.stderr
        assert agents["snapshot"] == expected.id
    result, listed = lifeboat_json(
        "snapshots", "--repo", path, "--host", socket.gethostname(), "--tag", "staging"
    )
    assert [s["id"] for s in listed] == [theirs.id]
    nowhere = cli("agents", "list", "--repo", path, "--host", "no-such-host")
    assert nowhere.returncode == 14 and nowhere.stderr.count("\n") == 1
    assert "no snapshot matches --host no-such-host" in nowhere.stderr
    named = cli("agents", "list", "--repo", path, "--snapshot", theirs.id[:8], "--source", letta_db.dbname)
    assert named.returncode == 14 and "does not match --source" in named.stderr  # a filter is never ignored

    # diff and copy pick by the same filter
    result, diffed = lifeboat_json("diff", "latest", "latest", "--repo", path, "--source", letta_db.dbname)
    assert result.returncode == 0, result.stderr
    assert diffed["snapshot_a"] == diffed["snapshot_b"] == mine.id
    other_repo = new_repo(tmp_path / "copy")
    copied = cli(
        "copy", "--repo", path, "--to", str(tmp_path / "copy"), "--source", other.dbname,
        env={"LIFEBOAT_TO_PASSWORD": PASSPHRASE},
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert other_repo.snapshot_ids() == [theirs.id]

    # agent restore without a snapshot: the target database's newest, said before anything happens
    agent = letta_db.facts["sleeptime"]["agent_id"]
    args = ["restore", "--repo", path, "--agent", agent, "--db", letta_db.dsn, "--dry-run"]
    result, plan = lifeboat_json(*args)
    assert result.returncode == 0, result.stderr
    assert plan["snapshot"] == mine.id
    assert plan["snapshot_chosen"]["id"] == mine.id
    assert plan["snapshot_chosen"]["source_database"] == letta_db.dbname
    human = cli(*args, env={"COLUMNS": "80"})
    assert human.returncode == 0, human.stderr
    said = " ".join(human.stdout.split())
    assert f"using snapshot {mine.short_id} taken " in said and f" of database {letta_db.dbname} on " in said
    assert "newest of the target database" in said
    # --source picks another database's snapshot; a named snapshot is used as named
    result, plan = lifeboat_json(*args, "--source", other.dbname)
    assert result.returncode == 0, result.stderr
    assert plan["snapshot"] == theirs.id
    result, plan = lifeboat_json(*args, theirs.short_id)
    assert plan["snapshot"] == theirs.id and plan["snapshot_chosen"]["chosen_by"] == "named"

    # no snapshot of the target database: refused in one line, nothing restored
    forgotten = cli("forget", "--repo", path, mine.short_id)
    assert forgotten.returncode == 0, forgotten.stderr
    assert repo.snapshot_ids() == [theirs.id]
    refused = cli(*args)
    assert refused.returncode == 14 and refused.stderr.count("\n") == 1
    assert f"no snapshot of the target database '{letta_db.dbname}'" in refused.stderr
