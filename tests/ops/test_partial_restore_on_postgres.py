"""``restore --partial`` of a snapshot with a deleted, truncated or bit-flipped pack, on the real
Letta database, through the CLI.

Without ``--partial`` the restore refuses (exit 13) and leaves nothing behind. With it, every readable row
goes in, the report names exactly what ``repair snapshots`` computes (tables, rows, agents), every
other table equals the source's, foreign keys into lost rows stay ``NOT VALID`` and the exit code
is 13 (a partial success is not a success).
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from ops_testing import FAST_KDF, PASSPHRASE, cli, table_digests

from lifeboat.ops.backup import run_backup
from lifeboat.repo.config import ChunkerParams
from lifeboat.repo.repository import Repository


def _databases(admin_dsn: str, prefix: str) -> list[str]:
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
        return [row[0] for row in rows.fetchall()]


def _not_valid_foreign_keys(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname || '.' || k.conname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE k.contype = 'f' AND NOT k.convalidated ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def _damage(kind: str, pack: Path, offset: int) -> None:
    if kind == "pack-deleted":
        pack.unlink()
    elif kind == "pack-truncated":
        pack.write_bytes(pack.read_bytes()[: offset + 10])
    else:  # one byte of one blob flipped: the pack keeps its size, the load itself finds it
        data = bytearray(pack.read_bytes())
        data[offset + 20] ^= 0xFF
        pack.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["pack-deleted", "pack-truncated", "blob-damaged"])
def test_partial_restore_reports_exactly_what_repair_computes(letta_db, tmp_path: Path, kind: str) -> None:
    repo_dir = tmp_path / "repo"
    repo = Repository.init(
        repo_dir,
        PASSPHRASE,
        kdf=FAST_KDF,
        chunker=ChunkerParams(min_size=4 << 10, avg_size=16 << 10, max_size=64 << 10),
        pack_size=64 << 10,
    )
    snapshot = run_backup(repo, letta_db.admin_dsn).snapshot
    source = table_digests(letta_db.admin_dsn, schema=None)
    whole = cli("--json", "restore", snapshot.id, "--target", letta_db.cluster.dsn(f"whole_{snapshot.short_id}"),
                "--partial", "--repo", str(repo_dir))  # fmt: skip
    assert whole.returncode == 0, whole.stderr  # nothing lost: a plain success
    assert json.loads(whole.stdout)["partial"] is None
    assert table_digests(letta_db.cluster.dsn(f"whole_{snapshot.short_id}"), schema=None) == source
    agents_stream = next(s for s in snapshot.streams if s.attributes.get("table") == "agents")
    location = repo.index.get(agents_stream.blobs[0].id)
    assert location is not None
    _damage(kind, repo_dir / "data" / location.pack_id[:2] / location.pack_id, location.offset)
    url = ["--repo", str(repo_dir)]
    target_name = f"partial_{snapshot.short_id}"
    target = letta_db.cluster.dsn(target_name)
    admin = letta_db.cluster.dsn()

    refused = cli("restore", snapshot.id, "--target", target, *url)
    assert refused.returncode == 13 and "Traceback" not in refused.stderr
    assert _databases(admin, target_name) == []  # nothing left behind, not even a temporary database

    done = cli("--json", "restore", snapshot.id, "--target", target, "--partial", *url)
    assert done.returncode == 13, done.stderr
    assert "Traceback" not in done.stderr and "restored into" in done.stderr
    loss = json.loads(done.stdout)["partial"]

    if kind == "blob-damaged":  # `repair snapshots` reads no blob: `repair packs` finds the flipped one
        assert cli("repair", "packs", *url).returncode == 0
    repaired = cli("--json", "repair", "snapshots", *url)
    assert repaired.returncode == 0, repaired.stderr
    (damage,) = json.loads(repaired.stdout)["damaged"]
    assert {t["stream"]: t["rows_lost"] for t in loss["tables"]} == {
        s["stream"]: s["records_lost"] for s in damage["streams"]
    }
    assert loss["rows_lost"] == sum(s["records_lost"] for s in damage["streams"]) > 0
    assert {a: sorted(s) for a, s in loss["agents"].items()} == {
        a: sorted(s) for a, s in damage["agents"].items()
    }
    assert loss["agents"]  # the agents table itself lost rows

    restored = table_digests(target, schema=None)
    lost = {t["table"]: t["rows_lost"] for t in loss["tables"]}
    assert "letta.agents" in lost
    assert set(restored) == set(source)
    for table, (rows, digest) in source.items():
        if table in lost:
            assert restored[table][0] == rows - lost[table], table
        else:
            assert restored[table] == (rows, digest), table
    assert loss["foreign_keys_not_valid"] == _not_valid_foreign_keys(target)
    assert any(".agents" not in key for key in loss["foreign_keys_not_valid"])  # keys into agents

    human_name = f"{target_name}_h"
    human = cli("restore", snapshot.id, "--target", letta_db.cluster.dsn(human_name), "--partial", *url)
    assert human.returncode == 13 and "Traceback" not in human.stderr
    assert "table letta.agents:" in human.stdout and "left NOT VALID" in human.stdout
    assert all(agent in human.stdout for agent in loss["agents"])


def test_partial_is_for_whole_snapshot_restores_only(tmp_path: Path) -> None:
    for extra in (["--agent", "agent-x"], ["--upgrade", "head"]):
        done = cli("restore", "latest", "--partial", *extra, "--repo", str(tmp_path / "none"))
        assert done.returncode == 2 and "--partial" in done.stderr, done.stderr
