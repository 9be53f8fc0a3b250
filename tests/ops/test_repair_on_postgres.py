"""Issue 13's damage matrix on the real Letta database, through the CLI: each single damaged file is
named by ``check``; ``repair`` brings the repository back to a state where ``check`` passes, every
undamaged snapshot restores identical (per-table hashes), and a new backup restores."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from ops_testing import FAST_KDF, PASSPHRASE, cli, table_digests

from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.repo.config import ChunkerParams
from lifeboat.repo.crypto import wrap_keys
from lifeboat.repo.repository import Repository

KINDS = [
    "pack-deleted",
    "pack-truncated",
    "blob-damaged",
    "index-damaged",
    "manifest-damaged",
    "lock-garbage",
    "config-damaged",
    "key-damaged",
]
# What an operator runs first for each kind, before the general repair sequence.
FIRST_AID = {
    "lock-garbage": ["unlock", "--remove-all"],
    "config-damaged": ["repair", "config"],
    "key-damaged": ["repair", "keys"],
}


def _touch(dsn: str, round_: int) -> None:
    """Change one agent's description, so that each snapshot has blobs of its own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE agents SET description = %s WHERE id = (SELECT min(id) FROM agents)", (f"round {round_}",)
        )


def _own_blob(repo: Repository, newest: object, others: list[object]) -> str:
    shared = set().union(*(s.blob_ids() for s in others))  # type: ignore[attr-defined]
    return sorted(newest.blob_ids() - shared)[0]  # type: ignore[attr-defined]


def _damage(kind: str, repo: Repository, repo_dir: Path, victim_blob: str, victim_id: str) -> str:
    """Damage one file; returns a piece of text `check` must name."""
    location = repo.index.get(victim_blob)
    assert location is not None
    pack = repo_dir / "data" / location.pack_id[:2] / location.pack_id
    if kind == "pack-deleted":
        pack.unlink()
        return location.pack_id
    if kind == "pack-truncated":
        pack.write_bytes(pack.read_bytes()[: location.offset + 10])
        return location.pack_id
    if kind == "blob-damaged":
        data = bytearray(pack.read_bytes())
        data[location.offset + 20] ^= 0xFF
        pack.write_bytes(bytes(data))
        return victim_blob
    if kind == "index-damaged":
        index_file = sorted((repo_dir / "index").iterdir())[0]
        index_file.write_bytes(index_file.read_bytes()[:-2] + b"!!")
        return index_file.name
    if kind == "manifest-damaged":
        manifest = repo_dir / "snapshots" / victim_id
        manifest.write_bytes(manifest.read_bytes()[:-1] + b"!")
        return victim_id
    if kind == "config-damaged":
        config = repo_dir / "config"
        config.write_bytes(config.read_bytes()[:-40] + b"garbage")
        return "config"
    if kind == "key-damaged":
        (repo_dir / "keys" / ("f" * 32)).write_text('{"kdf": "argon2id"')  # the second passphrase's key
        return "f" * 32
    (repo_dir / "locks").mkdir(exist_ok=True)
    (repo_dir / "locks" / ("ab" * 16)).write_bytes(b"garbage")
    return "abababab"


def _lifeboat(*args: str) -> dict:  # type: ignore[type-arg]
    done = cli("--json", *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


@pytest.mark.parametrize("kind", KINDS)
def test_damage_matrix(letta_db, tmp_path: Path, kind: str) -> None:
    repo_dir = tmp_path / "repo"
    repo = Repository.init(
        repo_dir,
        PASSPHRASE,
        kdf=FAST_KDF,
        chunker=ChunkerParams(min_size=4 << 10, avg_size=16 << 10, max_size=64 << 10),
        pack_size=64 << 10,
    )
    second_key = wrap_keys(repo.keys, "second passphrase", FAST_KDF, repository_version=2)
    repo.backend.put("keys/" + "f" * 32, json.dumps(second_key).encode())
    snapshots, digests = [], {}
    for round_ in range(3):
        _touch(letta_db.admin_dsn, round_)
        snapshot = run_backup(repo, letta_db.admin_dsn).snapshot
        snapshots.append(snapshot)
        digests[snapshot.id] = table_digests(letta_db.admin_dsn)
    victim = snapshots[-1]
    named = _damage(kind, repo, repo_dir, _own_blob(repo, victim, snapshots[:-1]), victim.id)
    url = ["--repo", str(repo_dir)]

    checked = cli("check", "--read-data", *url)
    if kind == "lock-garbage":  # a warning: check passes, but the garbage lock blocks, and is named
        assert checked.returncode == 0 and named in checked.stdout
        blocked = cli("prune", *url)
        assert blocked.returncode == 11 and named in blocked.stderr
    else:
        assert checked.returncode == 13 and "Traceback" not in checked.stderr
        assert named in checked.stdout + checked.stderr
    if kind in FIRST_AID:
        _lifeboat(*FIRST_AID[kind], *url)

    _lifeboat("repair", "index", *url)
    _lifeboat("repair", "packs", *url)
    expected = {victim.id} if kind not in ("index-damaged", *FIRST_AID) else set()
    _lifeboat("repair", "snapshots", *url)  # keeps them, marked damaged
    listed = _lifeboat("snapshots", *url)
    assert {row["id"] for row in listed if row["damaged"]} == expected
    assert len(listed) == len(snapshots)  # a damaged one hides none of the others
    lost = _lifeboat("repair", "snapshots", "--forget", *url)
    forgotten = set(lost["forgotten"])
    assert forgotten == expected
    for item in lost["damaged"]:
        if item["readable"]:
            assert item["streams"] and all(s["records_lost"] > 0 for s in item["streams"])

    assert cli("check", "--read-data", *url).returncode == 0
    fresh = Repository.open(repo_dir, PASSPHRASE)
    for snapshot in snapshots:
        if snapshot.id not in forgotten:
            target = letta_db.cluster.dsn(f"rep_{kind.replace('-', '_')}_{snapshot.short_id}")
            run_restore(fresh, snapshot.id, target)
            assert table_digests(target) == digests[snapshot.id]
    again = run_backup(fresh, letta_db.admin_dsn).snapshot  # stores the lost blobs again
    target = letta_db.cluster.dsn(f"rep_{kind.replace('-', '_')}_new")
    run_restore(Repository.open(repo_dir, PASSPHRASE), again.id, target)
    assert table_digests(target) == table_digests(letta_db.admin_dsn)
    assert cli("check", "--read-data", *url).returncode == 0
