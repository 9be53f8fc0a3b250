"""Format 2: someone who can write the storage but has no passphrase cannot change what lifeboat trusts.

Each attack is refused with one clean error and nothing is written; format-1 repositories keep
working and ``upgrade_repository`` turns them into format 2 in place.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, make_rows, row_key

from lifeboat.errors import CorruptRepository, WrongPassphrase
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo.config import FORMAT_VERSION
from lifeboat.repo.crypto import MasterKeys, wrap_keys
from lifeboat.repo.upgrade import upgrade_repository


def backup(repo: Repository, rows: list[bytes], name: str = "t") -> Snapshot:
    with repo.lock(), repo.writer() as writer:
        stream = writer.write_stream(name, [RecordBatch(rows, [row_key(r) for r in rows])])
    snapshot = Snapshot(streams=[stream])
    repo.save_snapshot(snapshot)
    return snapshot


def restored_rows(repo: Repository, snapshot_id: str, name: str = "t") -> list[bytes]:
    return list(repo.iter_records(repo.load_snapshot(snapshot_id).stream(name)))


def files(root: Path) -> dict[str, bytes]:
    """Every file and its content: the attack tests assert that a refused open writes nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def config_of(root: Path) -> dict[str, object]:
    return json.loads((root / "config").read_text())


def write_config(root: Path, document: dict[str, object]) -> None:
    (root / "config").write_text(json.dumps(document))


def lifeboat(root: Path, *args: str, passphrase: str | None = PASSPHRASE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")}
    if passphrase is not None:
        env["LIFEBOAT_PASSWORD"] = passphrase
    return subprocess.run(
        [sys.executable, "-m", "lifeboat", *args, "--repo", str(root)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr


def test_new_repositories_have_a_sealed_config(repo: Repository, repo_path: Path) -> None:
    document = config_of(repo_path)
    assert set(document) == {"format", "version", "encryption", "sealed"}
    assert document["version"] == FORMAT_VERSION
    reopened = Repository.open(repo_path, PASSPHRASE)
    assert reopened.config == repo.config and reopened.config.pack_size == SMALL_PACK


def test_config_downgraded_to_none_is_refused(repo: Repository, repo_path: Path) -> None:
    snapshot = backup(repo, make_rows(500))
    attacker = {
        "format": "lifeboat-repository",
        "version": 2,
        "encryption": "none",
        "id_key": base64.b64encode(b"A" * 32).decode(),
    }
    write_config(repo_path, attacker)
    before = files(repo_path)
    for passphrase in (PASSPHRASE, None):
        with pytest.raises(CorruptRepository, match="unencrypted but it has key files"):
            Repository.open(repo_path, passphrase)
    assert_one_line_refusal(lifeboat(repo_path, "snapshots"), 13, "unencrypted but it has key files")
    assert files(repo_path) == before
    # The key files deleted too: the passphrase the operator gives says the repository is encrypted.
    for key_file in (repo_path / "keys").iterdir():
        key_file.unlink()
    with pytest.raises(WrongPassphrase, match="unencrypted, but a passphrase was given"):
        Repository.open(repo_path, PASSPHRASE)
    assert snapshot.id  # nothing the attacker wrote was read as a repository


@pytest.mark.parametrize(
    "change",
    [
        {"pack_size": 4096},  # an unauthenticated field next to the sealed settings
        {"chunker": {"min_size": 1, "avg_size": 2, "max_size": 3}},
        {"sealed": base64.b64encode(os.urandom(200)).decode()},  # settings sealed under another key
        {"encryption": "aes-256-gcm ", "sealed": None},
    ],
    ids=["pack-size-added", "chunker-added", "sealed-replaced", "garbled"],
)
def test_config_fields_changed_are_refused(
    repo: Repository, repo_path: Path, change: dict[str, object]
) -> None:
    document = {**config_of(repo_path), **change}
    write_config(repo_path, {k: v for k, v in document.items() if v is not None})
    before = files(repo_path)
    with pytest.raises(CorruptRepository):
        Repository.open(repo_path, PASSPHRASE)
    assert files(repo_path) == before


def test_sealed_settings_from_another_repository_are_refused(tmp_path: Path, repo_path: Path) -> None:
    """A config sealed by a repository with the same passphrase but other keys does not open."""
    Repository.init(repo_path, PASSPHRASE, kdf=FAST_KDF)
    other = Repository.init(tmp_path / "other", PASSPHRASE, kdf=FAST_KDF, pack_size=4096)
    write_config(repo_path, config_of(tmp_path / "other"))
    with pytest.raises(CorruptRepository, match="changed or damaged"):
        Repository.open(repo_path, PASSPHRASE)
    assert other.config.pack_size == 4096


def test_config_rolled_back_to_format_1_is_refused(repo: Repository, repo_path: Path) -> None:
    """Clear format-1 settings (pack size, chunker) under format-2 keys: a downgrade, refused."""
    legacy = json.loads(repo.config.model_copy(update={"version": 1, "pack_size": 4096}).model_dump_json())
    write_config(repo_path, legacy)
    with pytest.raises(CorruptRepository, match="refusing a downgraded config"):
        Repository.open(repo_path, PASSPHRASE)
    assert_one_line_refusal(lifeboat(repo_path, "snapshots"), 13, "downgraded config")


def plant_key_file(repo_path: Path, name: str, document: object) -> None:
    (repo_path / "keys" / name).write_text(json.dumps(document))


def test_key_file_with_huge_argon2_parameters_is_skipped(
    repo: Repository, repo_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (real,) = (repo_path / "keys").iterdir()
    real.rename(real.with_name("f" * 32))
    keys = MasterKeys(os.urandom(32), os.urandom(32))
    planted = wrap_keys(keys, PASSPHRASE, FAST_KDF)
    planted["memory_cost"] = 4 * 1024**3  # 4 TiB in KiB
    plant_key_file(repo_path, "0" * 32, planted)  # sorted before the real key file
    plant_key_file(repo_path, "1" * 32, {**planted, "memory_cost": 8192, "time_cost": 10**6})
    (repo_path / "keys" / ("2" * 32)).write_text("not json")
    with caplog.at_level(logging.WARNING, logger="lifeboat.repo.keys"):
        opened = Repository.open(repo_path, PASSPHRASE)
    assert opened.keys == repo.keys
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 3 and all("skipping key file keys/" in line for line in warned)
    assert "memory_cost" in warned[0] and "time_cost" in warned[1] and "not valid JSON" in warned[2]
    with pytest.raises(WrongPassphrase):
        Repository.open(repo_path, "wrong")


def test_only_bad_key_files_is_a_damaged_repository(repo: Repository, repo_path: Path) -> None:
    (good,) = (repo_path / "keys").iterdir()
    good.write_text("{}")
    with pytest.raises(CorruptRepository, match="every one is damaged"):
        Repository.open(repo_path, PASSPHRASE)


def test_index_file_renamed_is_refused(repo: Repository, repo_path: Path) -> None:
    backup(repo, make_rows(800))
    (index_file,) = (repo_path / "index").iterdir()
    index_file.rename(index_file.with_name("f" * 64))
    with pytest.raises(CorruptRepository, match="does not authenticate under its name"):
        Repository.open(repo_path, PASSPHRASE).load_index()


# -- format 1 --------------------------------------------------------------------------------------


def legacy_repo(path: Path, *, encrypt: bool = True) -> Repository:
    if encrypt:
        return Repository.init(
            path, PASSPHRASE, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, kdf=FAST_KDF, version=1
        )
    return Repository.init(path, None, encrypt=False, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, version=1)


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "unencrypted"])
def test_format_1_is_read_and_upgraded_in_place(repo_path: Path, encrypt: bool) -> None:
    passphrase = PASSPHRASE if encrypt else None
    old = legacy_repo(repo_path, encrypt=encrypt)
    first_rows = make_rows(1500, seed=1)
    first = backup(old, first_rows)
    assert config_of(repo_path)["version"] == 1 and "sealed" not in config_of(repo_path)
    reopened = Repository.open(repo_path, passphrase)
    assert reopened.config.version == 1
    second_rows = make_rows(1500, seed=2)
    second = backup(reopened, second_rows)  # still written as format 1
    v1_config = (repo_path / "config").read_bytes()

    report = upgrade_repository(reopened, passphrase)
    # Unencrypted index files are named by the hash of their bytes in both formats: nothing to rewrite.
    assert (report.from_version, report.to_version) == (1, 2)
    assert report.index_files_rewritten == (2 if encrypt else 0)
    assert config_of(repo_path)["version"] == 2
    upgraded = Repository.open(repo_path, passphrase)
    assert restored_rows(upgraded, first.id) == first_rows
    assert restored_rows(upgraded, second.id) == second_rows
    assert upgraded.check(read_data=True).findings == []
    if encrypt:
        assert set(config_of(repo_path)) == {"format", "version", "encryption", "sealed"}
        assert report.key_file_replaced is not None and not (repo_path / report.key_file_replaced).exists()
        (repo_path / "config").write_bytes(v1_config)  # rolling the config back is now refused
        with pytest.raises(CorruptRepository, match="downgraded"):
            Repository.open(repo_path, passphrase)
    again = upgrade_repository(Repository.open(repo_path, passphrase), passphrase) if not encrypt else None
    assert again is None or again.index_files_rewritten == 0


def test_interrupted_upgrade_leaves_a_readable_repository_and_a_rerun_finishes(repo_path: Path) -> None:
    old = legacy_repo(repo_path)
    rows = make_rows(1000)
    snapshot = backup(old, rows)

    class Interrupted(Exception):
        pass

    real_put = old.backend.put

    def put(name: str, data: bytes) -> None:
        if name == "config":
            raise Interrupted
        real_put(name, data)

    old.backend.put = put  # type: ignore[method-assign]
    with pytest.raises(Interrupted):
        upgrade_repository(old, PASSPHRASE)
    assert len(list((repo_path / "index").iterdir())) == 2  # old and new index file side by side
    still_v1 = Repository.open(repo_path, PASSPHRASE)
    assert still_v1.config.version == 1 and restored_rows(still_v1, snapshot.id) == rows
    assert not (repo_path / "locks").exists() or not list((repo_path / "locks").iterdir())
    report = upgrade_repository(still_v1, PASSPHRASE)
    assert report.index_files_rewritten == 1
    upgraded = Repository.open(repo_path, PASSPHRASE)
    assert upgraded.config.version == 2 and restored_rows(upgraded, snapshot.id) == rows
    assert len(list((repo_path / "index").iterdir())) == 1


def test_upgrade_command(repo_path: Path) -> None:
    legacy_repo(repo_path)
    result = lifeboat(repo_path, "upgrade-repository")
    assert result.returncode == 0, result.stderr
    assert "from format version 1 to 2" in result.stdout
    assert Repository.open(repo_path, PASSPHRASE).config.version == 2
    result = lifeboat(repo_path, "upgrade-repository")
    assert result.returncode == 0 and "already format version 2" in result.stdout
    assert "blob ids stay keyed BLAKE2b" in result.stdout and "lifeboat copy" in result.stdout


def test_add_key_writes_a_key_file_of_the_repository_format(repo: Repository, repo_path: Path) -> None:
    name = repo.add_key("second passphrase", FAST_KDF)
    document = json.loads((repo_path / name).read_text())
    assert document["version"] == 2
    opened = Repository.open(repo_path, "second passphrase")
    assert opened.keys == repo.keys and opened.key_file == name
    assert opened.keys.min_version == FORMAT_VERSION
    assert opened.keys.settings == json.loads(repo.config.model_dump_json())
