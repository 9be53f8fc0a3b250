"""The daily verbs on real backups of a small Letta-shaped database: forget SNAPSHOT…, tag
(atomic rewrite, same id, all or nothing), ls and stats (sizes that add up)."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid

import pytest
from operator_testing import add_rows, cli, make_small_db

from lifeboat.errors import Interrupted, rolled_back
from lifeboat.ops.backup import run_backup
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository
from lifeboat.repo.tags import TagChange, retag


def _path(repo: Repository) -> str:
    return str(repo.backend.url).removeprefix("file://")


def _json(*args: str) -> tuple[subprocess.CompletedProcess[str], object]:
    result = cli("--json", *args)
    try:
        return result, json.loads(result.stdout)
    except ValueError:
        return result, None


def _three_backups(pg_cluster, repo: Repository) -> list[str]:
    dsn = make_small_db(pg_cluster, f"daily_{uuid.uuid4().hex[:8]}", agents=20)
    ids = [run_backup(repo, dsn, tags=["nightly"]).snapshot.id]
    add_rows(dsn, agents=5, seed=1)
    ids.append(run_backup(repo, dsn).snapshot.id)
    add_rows(dsn, agents=5, seed=2)
    ids.append(run_backup(repo, dsn, tags=["nightly"]).snapshot.id)
    return ids


def test_forget_named_snapshots_all_or_nothing(pg_cluster, repo: Repository) -> None:
    first, second, third = _three_backups(pg_cluster, repo)
    path = _path(repo)
    bad = cli("forget", "--repo", path, first[:8], "nonexistent")
    assert bad.returncode == 14 and bad.stderr.count("\n") == 1
    assert repo.snapshot_ids() == sorted([first, second, third])  # nothing forgotten
    mixed = cli("forget", "--repo", path, first[:8], "--keep-last", "1")
    assert mixed.returncode == 2 and "not both" in mixed.stderr
    result, forgotten = _json("forget", "--repo", path, first[:8], "latest", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert isinstance(forgotten, dict) and forgotten["removed"] == [first, third]
    assert len(repo.snapshot_ids()) == 3
    result, forgotten = _json("forget", "--repo", path, first[:8], "--tag", "nightly", "latest")
    assert result.returncode == 0, result.stderr
    assert isinstance(forgotten, dict) and forgotten["removed"] == [first, third]
    assert repo.snapshot_ids() == [second]


def test_tag_rewrites_manifests_atomically_and_keeps_ids(pg_cluster, repo: Repository) -> None:
    first, second, third = _three_backups(pg_cluster, repo)
    path = _path(repo)
    before = {i: repo.read_snapshot(i) for i in (first, second, third)}
    result, changed = _json("tag", "--repo", path, "--tag", "nightly", "--add", "keep", "--remove", "nightly")
    assert result.returncode == 0, result.stderr
    assert isinstance(changed, dict) and [s["id"] for s in changed["snapshots"]] == [first, third]
    assert repo.snapshot_ids() == sorted([first, second, third])  # same ids
    for snapshot_id in (first, third):
        after = repo.read_snapshot(snapshot_id)
        assert after.tags == ["keep"]
        assert (
            after.streams == before[snapshot_id].streams and after.documents == before[snapshot_id].documents
        )
        assert after.time == before[snapshot_id].time
    assert repo.read_snapshot(second).tags == []
    assert repo.check().ok
    # bad input and a wrong target: one line, nothing changed
    for args, code in (
        (["--add", "a,b", second], 2),
        (["--add", "x"], 2),  # neither snapshots nor filter: refuses to retag everything
        (["--set", "x", "--add", "y", second], 2),
        (["--add", "x", second[:8], "nope"], 14),
        (["--add", "x", "--source", "elsewhere", "latest"], 14),
    ):
        refused = cli("tag", "--repo", path, *args)
        assert refused.returncode == code, (args, refused.stderr)
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert [repo.read_snapshot(i).tags for i in (first, second, third)] == [["keep"], [], ["keep"]]
    result, _ = _json("tag", "--repo", path, "--set", "monthly", second[:8])
    assert result.returncode == 0 and repo.read_snapshot(second).tags == ["monthly"]


def test_tag_is_all_or_nothing(pg_cluster, repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, third = _three_backups(pg_cluster, repo)
    lock = repo.lock()  # e.g. a running backup: tag needs the exclusive lock
    try:
        locked = cli("tag", "--repo", _path(repo), "--add", "x", first)
    finally:
        lock.release()
    assert locked.returncode == 11 and locked.stderr.count("\n") == 1
    assert repo.read_snapshot(first).tags == ["nightly"]

    writes = []
    original = Repository.rewrite_snapshot

    def interrupted_on_the_second(self: Repository, snapshot: Snapshot) -> None:
        writes.append(snapshot.id)
        if len(writes) == 2:
            raise Interrupted(signal.SIGINT)
        original(self, snapshot)

    monkeypatch.setattr(Repository, "rewrite_snapshot", interrupted_on_the_second)
    with pytest.raises(Interrupted) as raised:
        retag(repo, [first, second, third], TagChange(add=("x",)))
    assert rolled_back(raised.value)[0] == "the tags of 1 snapshot(s) already changed"
    assert [repo.read_snapshot(i).tags for i in (first, second, third)] == [["nightly"], [], ["nightly"]]
    assert repo.list_locks() == []


def test_ls_and_stats_add_up(pg_cluster, repo: Repository) -> None:
    first, second, third = _three_backups(pg_cluster, repo)
    path = _path(repo)
    result, listing = _json("ls", "--repo", path, third[:8])
    assert result.returncode == 0, result.stderr
    assert isinstance(listing, dict) and listing["id"] == third
    snapshot = repo.read_snapshot(third)
    rows = {t["table"]: t["rows"] for t in listing["tables"]}
    assert rows == {s.name.removeprefix("table:"): s.records for s in snapshot.streams}
    assert rows["letta.agents"] == 30
    result, stats = _json("stats", "--repo", path)
    assert result.returncode == 0, result.stderr
    assert isinstance(stats, dict) and stats["snapshots"] == [first, second, third]
    snapshots = [repo.read_snapshot(i) for i in (first, second, third)]
    assert stats["raw_bytes"] == sum(s.raw_size() for s in snapshots)
    distinct = {b.id: b for s in snapshots for b in s.iter_blobs()}
    assert stats["deduplicated_bytes"] == sum(b.raw_size for b in distinct.values()) < stats["raw_bytes"]
    assert stats["stored_bytes"] == sum(b.size for b in distinct.values())
    assert stats["repository_bytes"] >= stats["stored_bytes"]
    assert sum(t["stored_bytes"] for t in stats["tables"]) == stats["stored_bytes"]
    result, one = _json("stats", "--repo", path, "latest", "--tag", "nightly")
    assert isinstance(one, dict) and one["snapshots"] == [third]
    human = cli("stats", "--repo", path, env={"COLUMNS": "80"})
    assert human.returncode == 0 and "deduplicated" in human.stdout
    assert max(len(line) for line in human.stdout.splitlines()) <= 80, human.stdout
    human = cli("ls", "--repo", path, "latest", env={"COLUMNS": "80"})
    assert human.returncode == 0 and "letta.messages" in human.stdout
    assert max(len(line) for line in human.stdout.splitlines()) <= 80, human.stdout
    missing = cli("ls", "--repo", path, "ffff")
    assert missing.returncode == 14 and missing.stderr.count("\n") == 1
