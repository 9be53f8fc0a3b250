"""Retention, prune, copy, unlock and backup metrics through the CLI on real backups of a small
Letta-shaped database: every kept snapshot restores, prune never breaks a concurrent backup, a copy
passes check --read-data and restores."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from operator_testing import add_rows, cli, digests, make_small_db, retime, small_repo

from lifeboat.errors import RepositoryLocked
from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import Trust, run_restore
from lifeboat.repo.prune import prune
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.postgres import Cluster


def _restores_to(repo: Repository, cluster: Cluster, snapshot_id: str) -> dict[str, tuple[int, str]]:
    target = cluster.dsn(f"restored_{uuid.uuid4().hex[:8]}")
    # make_small_db is laid out like Letta and claims its head revision, but has three tables:
    # not the record of that revision, which a restore refuses without --trust-schema.
    run_restore(repo, snapshot_id, target, trust=Trust(schema=True))
    try:
        return digests(target)
    finally:
        cluster.drop_database(target.rsplit("/", 1)[1])


def test_forget_keeps_the_policy_and_every_kept_snapshot_restores(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    dsn = make_small_db(pg_cluster, "forget_src")
    repo = small_repo(tmp_path / "repo")
    start = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    # Five nightly backups, plus a second one on the last day: each state differs.
    times = [start + timedelta(days=day) for day in range(5)] + [start + timedelta(days=4, hours=12)]
    expected = {}
    for number, when in enumerate(times):
        add_rows(dsn, agents=1, messages=5, seed=number + 1)
        snapshot_id = run_backup(repo, dsn, tags=["nightly"]).snapshot.id
        retime(repo, snapshot_id, when)
        expected[snapshot_id] = digests(dsn)
    by_time = {when: snapshot_id for snapshot_id, when in zip(expected, times, strict=True)}

    dry = cli(
        "--json", "forget", "--repo", repo.backend.url, "--keep-daily", "3", "--group-by", "", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert len(repo.snapshot_ids()) == 6  # a dry run changes nothing
    done = cli(
        "forget", "--json", "--repo", repo.backend.url, "--keep-daily", "3", "--group-by", "", "--prune"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    kept = {by_time[times[-1]], by_time[times[3]], by_time[times[2]]}  # newest of each of the last 3 days
    assert set(result["kept"]) == kept == set(repo.snapshot_ids())
    assert set(result["removed"]) == set(expected) - kept
    assert json.loads(dry.stdout)["removed"] == result["removed"]
    assert result["prune"]["packs_removed"] + result["prune"]["packs_repacked"] > 0
    assert cli("check", "--read-data", "--repo", repo.backend.url).returncode == 0
    repo.load_index()
    for snapshot_id in sorted(kept):
        assert _restores_to(repo, pg_cluster, snapshot_id) == expected[snapshot_id]


def test_prune_concurrent_with_a_backup_never_breaks_its_snapshot(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    dsn = make_small_db(pg_cluster, "prune_src", agents=60)
    repo = small_repo(tmp_path / "repo")
    old = run_backup(repo, dsn).snapshot
    add_rows(dsn, agents=5, messages=20, seed=7)
    repo.delete_snapshot(old.id)  # prune will have work: the old snapshot's own blobs
    in_backup = threading.Event()
    resume = threading.Event()
    results: dict[str, object] = {}

    def pause(_bytes: int) -> None:
        if not in_backup.is_set():
            in_backup.set()
            assert resume.wait(60)

    def backup() -> None:
        results["backup"] = run_backup(
            Repository.open(repo.backend.url, "correct horse battery staple"), dsn, progress=pause
        )

    thread = threading.Thread(target=backup)
    thread.start()
    assert in_backup.wait(60)  # the backup holds its shared lock and is copying tables
    with pytest.raises(RepositoryLocked):
        prune(repo)
    pruner = threading.Thread(target=lambda: results.update(prune=prune(repo, retry_lock=60)))
    pruner.start()  # waits for the backup's lock
    resume.set()
    thread.join(120)
    pruner.join(120)

    snapshot = results["backup"].snapshot  # type: ignore[attr-defined]
    assert results["prune"].bytes_freed > 0  # type: ignore[attr-defined]
    repo.load_index()
    assert repo.check(read_data=True).ok
    assert _restores_to(repo, pg_cluster, snapshot.id) == digests(dsn)


def test_copy_passes_check_read_data_and_restores(pg_cluster: Cluster, tmp_path: Path) -> None:
    dsn = make_small_db(pg_cluster, "copy_src")
    repo = small_repo(tmp_path / "repo")
    snapshot_id = run_backup(repo, dsn, tags=["nightly"]).snapshot.id
    target = small_repo(tmp_path / "offsite", passphrase="offsite passphrase")

    copied = cli(
        "--json",
        "copy",
        "--repo",
        repo.backend.url,
        "--to",
        target.backend.url,
        env={"LIFEBOAT_TO_PASSWORD": "offsite passphrase"},
    )
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["copied"] == [snapshot_id]

    checked = cli(
        "check", "--read-data", "--repo", target.backend.url, env={"LIFEBOAT_PASSWORD": "offsite passphrase"}
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wrong = cli("check", "--repo", target.backend.url)  # the source's passphrase does not open the copy
    assert wrong.returncode == 12
    offsite = Repository.open(target.backend.url, "offsite passphrase")
    assert _restores_to(offsite, pg_cluster, snapshot_id) == digests(dsn)


def test_backup_metrics_file_and_unlock(pg_cluster: Cluster, tmp_path: Path) -> None:
    dsn = make_small_db(pg_cluster, "metrics_src")
    repo = small_repo(tmp_path / "repo")
    metrics = tmp_path / "textfile" / "lifeboat.prom"
    base = ["--repo", repo.backend.url, "--db", dsn, "--metrics-file", str(metrics)]

    assert cli("backup", *base).returncode == 0
    first = metrics.read_text()
    assert "# TYPE lifeboat_backup_success gauge" in first
    assert f'lifeboat_backup_success{{repository="{repo.backend.url}"}} 1' in first
    assert f'lifeboat_repository_snapshots{{repository="{repo.backend.url}"}} 1' in first
    assert "lifeboat_backup_bytes_added{" in first and "lifeboat_backup_duration_seconds{" in first

    failed = cli(
        "backup",
        "--repo",
        repo.backend.url,
        "--db",
        pg_cluster.dsn("no_such_db"),
        "--metrics-file",
        str(metrics),
    )
    assert failed.returncode == 4
    after = metrics.read_text()
    assert f'lifeboat_backup_success{{repository="{repo.backend.url}"}} 0' in after
    last_success = [line for line in first.splitlines() if line.startswith("lifeboat_backup_last_success")]
    assert last_success and last_success[0] in after  # a failure keeps the last success time

    dead = uuid.uuid4().hex  # a shared lock of a process that died an hour ago on another host
    backdated = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    document = {
        "exclusive": False,
        "hostname": "elsewhere",
        "pid": 1,
        "time": backdated,
        "created": backdated,
    }
    repo.backend.put(f"locks/{dead}", repo.sealer.seal(json.dumps(document).encode(), b"lifeboat:lock"))
    an_hour_ago = time.time() - 3600  # staleness is judged by the storage's time of the file
    os.utime(Path(repo.backend.url) / "locks" / dead, (an_hour_ago, an_hour_ago))
    live = repo.lock()
    unlocked = cli("--json", "unlock", "--repo", repo.backend.url)
    assert unlocked.returncode == 0, unlocked.stderr
    result = json.loads(unlocked.stdout)
    assert [lock["id"] for lock in result["removed"]] == [dead]
    assert [lock["id"] for lock in result["remaining"]] == [live.id]
    live.release()
