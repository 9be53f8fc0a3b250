"""Issue 12, storage truth, on the real Letta database: a pack lost from storage is stored again by
the next backup, whose snapshot then restores identical (never a deduplicated snapshot that cannot
be restored)."""

from __future__ import annotations

from pathlib import Path

from ops_testing import FAST_KDF, PASSPHRASE, table_digests

from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.repo.config import ChunkerParams
from lifeboat.repo.repository import Repository


def test_delete_a_pack_then_back_up_restores(letta_db, tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    repo = Repository.init(
        repo_dir,
        PASSPHRASE,
        kdf=FAST_KDF,
        chunker=ChunkerParams(min_size=4 << 10, avg_size=16 << 10, max_size=64 << 10),
        pack_size=128 << 10,
    )
    first = run_backup(repo, letta_db.admin_dsn)
    packs = sorted(p for p in (repo_dir / "data").rglob("*") if p.is_file())
    assert len(packs) > 1
    biggest = max(packs, key=lambda p: p.stat().st_size)
    biggest.unlink()  # a lifecycle rule or an operator removed it
    assert not Repository.open(repo_dir, PASSPHRASE).check().ok

    reopened = Repository.open(repo_dir, PASSPHRASE)
    second = run_backup(reopened, letta_db.admin_dsn)
    assert second.stats.blobs_new > 0  # the lost blobs were stored again, not "deduplicated"

    fresh = Repository.open(repo_dir, PASSPHRASE)
    target = letta_db.cluster.dsn("after_lost_pack")
    run_restore(fresh, second.snapshot.id, target)
    assert table_digests(target) == table_digests(letta_db.admin_dsn)
    report = fresh.check(read_data=True)
    assert report.affected_snapshots == []  # the re-stored blobs serve the first snapshot as well
    assert {finding.kind for finding in report.errors} == {"missing-pack"}
    assert first.snapshot.id in fresh.snapshot_ids()
