"""A format-2 repository (keyed BLAKE2b blob ids, docs/FORMAT.md §13) on the real Letta deployment:
what a repository made before format 3 must keep doing — back up (deduplicating against its own
BLAKE2b ids), restore into a fresh database with identical tables, verify and check. Unencrypted,
the restore checks every blob's hash (there is no AES-GCM tag to rely on), so the hash a format-2
repository is read with is exercised on the restore path too."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from dbcompare import table_digests
from repo_testing import FAST_KDF, PASSPHRASE

from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import Trust, run_restore
from lifeboat.repo import Repository
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.letta_schema import ensure_letta_role
from lifeboat.sandbox.postgres import Cluster


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "unencrypted"])
def test_format_2_repository_backs_up_and_restores_a_real_database(
    letta_db: LettaDatabase, pg18_cluster: Cluster, tmp_path: Path, encrypt: bool
) -> None:
    passphrase = PASSPHRASE if encrypt else None
    path = tmp_path / "repo"
    if encrypt:
        Repository.init(path, passphrase, kdf=FAST_KDF, version=2)
    else:
        Repository.init(path, None, encrypt=False, version=2)
    repo = Repository.open(path, passphrase)
    first = run_backup(repo, letta_db.admin_dsn)
    again = run_backup(Repository.open(path, passphrase), letta_db.admin_dsn, full=True)
    assert again.stats.blobs_deduplicated > 0 and again.stats.bytes_added < first.stats.bytes_added / 4

    reopened = Repository.open(path, passphrase)
    assert reopened.config.version == 2 and reopened.keys.id_hash == "blake2b"
    for stream in again.snapshot.streams[:5]:
        for ref in stream.blobs[:3]:
            plaintext = reopened.read_blob(ref.id)
            assert ref.id == hashlib.blake2b(plaintext, key=reopened.keys.id_key, digest_size=32).hexdigest()

    ensure_letta_role(pg18_cluster)
    target = pg18_cluster.dsn(f"letta_format2_{'enc' if encrypt else 'plain'}")
    run_restore(reopened, again.snapshot.id, target, trust=Trust(unencrypted=not encrypt))
    assert table_digests(target) == table_digests(letta_db.admin_dsn)
    assert reopened.verify_snapshot(reopened.load_snapshot(again.snapshot.id), read_data=True).ok
    assert reopened.check(read_data=True).findings == []
