"""Binary table streams (docs/FORMAT.md §16.1): a malformed tuple inside an authentic blob is
refused with one line by every reader, and a full restore leaves nothing behind."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from ops_testing import PASSPHRASE, cli, new_repo, table_digests

from lifeboat.errors import CorruptRepository, LifeboatError
from lifeboat.letta.subgraph import collect
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.source import SnapshotSource
from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.pg import copybinary
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository


def _with_malformed_passage(repo: Repository, snapshot: Snapshot) -> tuple[Snapshot, str]:
    """A new snapshot whose archival_passages stream starts with a blob (sealed and indexed like
    any other) whose second tuple claims a field longer than the row; returns it and an archive id."""
    streams = []
    archive = ""
    with repo.writer() as writer:
        for stream in snapshot.streams:
            if stream.attributes.get("table") == "archival_passages":
                attributes = layout.table_stream(stream)
                first = next(repo.iter_stream_data(stream))
                rows = copybinary.split_rows(first, len(attributes.columns))
                archive_at = attributes.columns.index("archive_id")
                archive = (copybinary.fields(rows[0])[archive_at] or b"").decode()
                broken = rows[1][:2] + struct.pack(">i", 1 << 20) + rows[1][6:]
                data = rows[0] + broken + b"".join(rows[2:])
                ref = writer.add_blob(
                    data,
                    records=len(rows),
                    zone_min=stream.blobs[0].zone_min,
                    zone_max=stream.blobs[0].zone_max,
                )
                stream = stream.model_copy(update={"blobs": [ref, *stream.blobs[1:]]})
            streams.append(stream)
    tampered = Snapshot(tags=["tampered"], streams=streams, documents=snapshot.documents)
    repo.save_snapshot(tampered)
    return tampered, archive


def test_malformed_binary_row_is_one_line_everywhere_and_restore_leaves_nothing(
    letta_db, tmp_path: Path
) -> None:
    repo_dir = tmp_path / "repo"
    repo = new_repo(repo_dir)
    snapshot = run_backup(repo, letta_db.admin_dsn).snapshot
    stream = next(s for s in snapshot.streams if s.attributes.get("table") == "archival_passages")
    assert stream.attributes["encoding"] == "copy-binary" and stream.records > 1
    tampered, archive = _with_malformed_passage(repo, snapshot)

    before = letta_db.cluster.list_databases()
    with pytest.raises(LifeboatError) as refused:
        run_restore(repo, tampered.id, letta_db.cluster.dsn("never_created"))
    assert "\n" not in str(refused.value) and "archival_passages" in str(refused.value)
    assert letta_db.cluster.list_databases() == before

    restored = cli(
        "restore",
        tampered.id[:12],
        "--repo",
        str(repo_dir),
        "--target",
        letta_db.cluster.dsn("never_created"),
    )
    assert restored.returncode != 0 and "Traceback" not in restored.stderr
    assert len(restored.stderr.strip().splitlines()) == 1, restored.stderr
    assert letta_db.cluster.list_databases() == before

    source = SnapshotSource(repo, tampered)
    with pytest.raises(CorruptRepository, match="malformed binary row") as unreadable:
        source("archival_passages", "archive_id", {archive})
    assert "\n" not in str(unreadable.value)
    agent = letta_db.facts["agent_ids"]["lb-agent-00"]
    collect(SnapshotSource(repo, snapshot), [agent])  # the untampered snapshot reads fine

    # A damaged byte in a binary blob is refused by its authentication, as in any other blob.
    location = repo.index.get(stream.blobs[-1].id)
    assert location is not None
    pack = repo_dir / "data" / location.pack_id[:2] / location.pack_id
    data = bytearray(pack.read_bytes())
    data[location.offset + location.length // 2] ^= 0x01
    os.chmod(pack, 0o600)
    pack.write_bytes(bytes(data))
    with pytest.raises(CorruptRepository, match="cannot be restored"):
        run_restore(Repository.open(repo_dir, PASSPHRASE), snapshot.id, letta_db.cluster.dsn("never_created"))
    assert letta_db.cluster.list_databases() == before


def test_incremental_backup_never_mixes_text_and_binary_blobs(
    letta_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first backup after binary streams appear (here: switched off, then on) rereads the
    vector tables instead of referencing the parent's text blobs, and restores exactly."""
    repo = new_repo(tmp_path / "repo")
    monkeypatch.setenv("LIFEBOAT_COPY_BINARY", "0")
    first = run_backup(repo, letta_db.admin_dsn).snapshot
    monkeypatch.delenv("LIFEBOAT_COPY_BINARY")
    second = run_backup(repo, letta_db.admin_dsn)
    assert second.incremental.parent == first.id  # an incremental backup…

    def passages(snapshot: Snapshot) -> tuple[object, set[str]]:
        stream = next(s for s in snapshot.streams if s.attributes.get("table") == "archival_passages")
        return stream.attributes.get("encoding"), {blob.id for blob in stream.blobs}

    (text, text_blobs), (binary, binary_blobs) = passages(first), passages(second.snapshot)
    assert (text, binary) == (None, "copy-binary") and text_blobs and not text_blobs & binary_blobs
    target = letta_db.cluster.dsn(f"restored_{second.snapshot.short_id}")
    run_restore(repo, second.snapshot.id, target)
    assert table_digests(target) == table_digests(letta_db.admin_dsn)
