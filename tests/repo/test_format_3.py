"""Format 3 (BLAKE3 blob ids) beside format 2 (BLAKE2b ids): docs/FORMAT.md §5, §13.

New repositories hash ids with keyed BLAKE3; a format-2 repository keeps BLAKE2b ids for good and
goes on backing up, deduplicating, restoring and checking; the hash follows only from the
authenticated version, so a format-3 config rolled back to 2 is refused; upgrade never re-ids;
copy stores every blob under the target's hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import blake3
import pytest
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, back_up, make_rows, row_key

from lifeboat.errors import CorruptBlob, CorruptRepository, UsageError
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo.blobs import compress, decode_blob
from lifeboat.repo.config import FORMAT_VERSION, pack_name
from lifeboat.repo.copy import copy_snapshots
from lifeboat.repo.crypto import MasterKeys
from lifeboat.repo.keys import encode_config
from lifeboat.repo.upgrade import upgrade_repository


def new_repo(path: Path, *, encrypt: bool = True, version: int = FORMAT_VERSION) -> Repository:
    if encrypt:
        return Repository.init(
            path, PASSPHRASE, kdf=FAST_KDF, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, version=version
        )
    return Repository.init(
        path, None, encrypt=False, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, version=version
    )


def rows_of(repo: Repository, snapshot_id: str) -> list[bytes]:
    return list(repo.iter_records(repo.load_snapshot(snapshot_id).stream("t")))


def keyed_blake3(repo: Repository, plaintext: bytes) -> str:
    return blake3.blake3(plaintext, key=repo.keys.id_key).hexdigest()


def keyed_blake2b(repo: Repository, plaintext: bytes) -> str:
    return hashlib.blake2b(plaintext, key=repo.keys.id_key, digest_size=32).hexdigest()


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "unencrypted"])
def test_new_repositories_are_format_3_with_blake3_ids(repo_path: Path, encrypt: bool) -> None:
    repo = new_repo(repo_path, encrypt=encrypt)
    assert FORMAT_VERSION == 3 and json.loads((repo_path / "config").read_text())["version"] == 3
    rows = make_rows(1500)
    snapshot = back_up(repo, rows)
    reopened = Repository.open(repo_path, PASSPHRASE if encrypt else None)
    assert reopened.config.version == 3 and reopened.keys.id_hash == "blake3"
    for ref in snapshot.stream("t").blobs:
        plaintext = reopened.read_blob(ref.id)
        assert ref.id == keyed_blake3(reopened, plaintext) != keyed_blake2b(reopened, plaintext)
    assert rows_of(reopened, snapshot.id) == rows
    assert reopened.check(read_data=True).findings == []


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "unencrypted"])
def test_format_2_keeps_blake2b_ids_and_works(repo_path: Path, encrypt: bool) -> None:
    passphrase = PASSPHRASE if encrypt else None
    repo = new_repo(repo_path, encrypt=encrypt, version=2)
    first_rows = make_rows(1500, seed=1)
    first = back_up(repo, first_rows)
    reopened = Repository.open(repo_path, passphrase)
    assert reopened.config.version == 2 and reopened.keys.id_hash == "blake2b"
    second_rows = first_rows + make_rows(100, seed=2, start=1500)
    with reopened.lock(), reopened.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(second_rows, [row_key(r) for r in second_rows])])
    assert writer.stats.blobs_deduplicated > 0  # against the stored BLAKE2b ids
    second = Snapshot(streams=[stream])
    reopened.save_snapshot(second)
    for ref in second.stream("t").blobs:
        plaintext = reopened.read_blob(ref.id)
        assert ref.id == keyed_blake2b(reopened, plaintext)
    again = Repository.open(repo_path, passphrase)
    assert rows_of(again, first.id) == first_rows and rows_of(again, second.id) == second_rows
    assert again.check(read_data=True).findings == []
    assert json.loads((repo_path / "config").read_text())["version"] == 2


def test_format_3_config_rolled_back_to_2_is_refused(repo_path: Path) -> None:
    """A config that says 2 (sealed under the right keys, which no attacker has) would make ids be
    checked with BLAKE2b: the key file's ``min_version`` 3 refuses it before anything is read."""
    repo = new_repo(repo_path)
    back_up(repo, make_rows(300))
    assert Repository.open(repo_path, PASSPHRASE).keys.min_version == 3  # from the key file
    rolled_back = repo.config.model_copy(update={"version": 2})
    (repo_path / "config").write_bytes(encode_config(rolled_back, repo.keys))
    with pytest.raises(CorruptRepository, match="refusing a downgraded config"):
        Repository.open(repo_path, PASSPHRASE)


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "unencrypted"])
def test_damaged_blob_in_format_3_is_found(repo_path: Path, encrypt: bool) -> None:
    repo = new_repo(repo_path, encrypt=encrypt)
    snapshot = back_up(repo, make_rows(1500))
    victim = snapshot.stream("t").blobs[0]
    plaintext = repo.read_blob(victim.id)
    # Another body filed under the id, or the right body under its BLAKE2b id: the hash refuses both.
    for blob_id, body in (
        (victim.id, repo.sealer.seal(compress(plaintext[::-1]), bytes.fromhex(victim.id))),
        (keyed_blake2b(repo, plaintext), repo.sealer.seal(compress(plaintext), bytes.fromhex(victim.id))),
    ):
        with pytest.raises(CorruptBlob):
            decode_blob(repo.keys, repo.sealer, blob_id, body, len(plaintext))
    location = repo.index.get(victim.id)
    assert location is not None
    path = repo_path / pack_name(location.pack_id)
    data = bytearray(path.read_bytes())
    data[location.offset + location.length // 2] ^= 0x10
    path.write_bytes(bytes(data))
    damaged = Repository.open(repo_path, PASSPHRASE if encrypt else None)
    with pytest.raises(CorruptBlob, match=victim.id):
        damaged.read_blob(victim.id)
    assert victim.id in damaged.check(read_data=True).damaged_blobs


@pytest.mark.parametrize("version", [2, 3])
def test_upgrade_never_changes_blob_ids(repo_path: Path, version: int) -> None:
    repo = new_repo(repo_path, version=version)
    snapshot = back_up(repo, make_rows(800))
    report = upgrade_repository(Repository.open(repo_path, PASSPHRASE), PASSPHRASE)
    assert (report.from_version, report.to_version) == (version, version)
    assert report.index_files_rewritten == 0 and report.key_file_replaced is None
    if version == 2:
        assert report.blob_id_hash == "blake2b" and report.note and "lifeboat copy" in report.note
    else:
        assert report.blob_id_hash == "blake3" and report.note is None
    after = Repository.open(repo_path, PASSPHRASE)
    assert after.config.version == version and after.load_snapshot(snapshot.id) == snapshot
    assert after.check(read_data=True).findings == []


def test_format_1_upgrades_to_2_keeping_blake2b_ids(repo_path: Path) -> None:
    repo = new_repo(repo_path, version=1)
    rows = make_rows(800)
    snapshot = back_up(repo, rows)
    report = upgrade_repository(Repository.open(repo_path, PASSPHRASE), PASSPHRASE)
    assert (report.from_version, report.to_version, report.blob_id_hash) == (1, 2, "blake2b")
    upgraded = Repository.open(repo_path, PASSPHRASE)
    assert upgraded.keys.id_hash == "blake2b" and upgraded.keys.min_version == 2
    assert rows_of(upgraded, snapshot.id) == rows
    assert back_up(upgraded, rows).stream("t").blobs == snapshot.stream("t").blobs  # still deduplicated


def test_copy_from_format_2_stores_blake3_ids(tmp_path: Path) -> None:
    source = new_repo(tmp_path / "old", version=2)
    rows = make_rows(1500)
    snapshot = back_up(source, rows)
    target = new_repo(tmp_path / "new")
    copy_snapshots(source, target)
    copied = target.load_snapshot(snapshot.id)
    for ref in copied.stream("t").blobs:
        assert ref.id == keyed_blake3(target, target.read_blob(ref.id))
    assert rows_of(target, snapshot.id) == rows
    assert target.check(read_data=True).findings == []


def test_sharing_ids_needs_the_same_id_hash(tmp_path: Path) -> None:
    old = new_repo(tmp_path / "old", version=2)
    with pytest.raises(UsageError, match="ids would differ"):
        Repository.init(tmp_path / "twin", PASSPHRASE, kdf=FAST_KDF, share_ids_with=old)
    assert not (tmp_path / "twin").exists()
    twin = Repository.init(tmp_path / "twin", PASSPHRASE, kdf=FAST_KDF, share_ids_with=old, version=2)
    assert twin.keys.id_hash == "blake2b" and twin.keys.id_key == old.keys.id_key


def test_keys_not_bound_to_a_format_compute_no_ids() -> None:
    keys = MasterKeys(encryption=None, id_key=b"k" * 32)
    with pytest.raises(RuntimeError, match="bound to a repository format"):
        keys.blob_id(b"row\n")
    assert keys.for_format(2).blob_id(b"row\n") != keys.for_format(3).blob_id(b"row\n")
