"""Incremental backups on the real Letta deployment: rows unchanged since the last snapshot are
not read again, and every table's stream is byte-for-byte what a full read gives."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import psycopg
import pytest
from ops_testing import table_digests
from support import small_repo

from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.backup import BackupResult, run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.postgres import Cluster


def _streams(repo: Repository, result: BackupResult) -> dict[str, bytes]:
    return {
        stream.name: b"".join(repo.iter_stream_data(stream))
        for stream in result.snapshot.streams
        if stream.name.startswith(layout.TABLE_STREAM_PREFIX)
    }


def _change(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO letta")
        for statement in statements:
            conn.execute(statement)


# An agent in the middle, the first and the last by id: edits inside the key range and at its ends.
_EDITS = (
    "UPDATE messages SET updated_at = updated_at + interval '1 second' WHERE id = "
    "(SELECT id FROM messages ORDER BY agent_id, sequence_id OFFSET (SELECT count(*) / 2 FROM messages) LIMIT 1)",
    "INSERT INTO agents_tags (agent_id, tag) SELECT min(id), 'lifeboat-incremental' FROM agents",
    "INSERT INTO agents_tags (agent_id, tag) SELECT max(id), 'lifeboat-incremental' FROM agents",
    "DELETE FROM agents_tags WHERE (agent_id, tag) = (SELECT agent_id, tag FROM agents_tags "
    "WHERE tag <> 'lifeboat-incremental' ORDER BY agent_id DESC, tag LIMIT 1 OFFSET 3)",
    "UPDATE block SET value = value || ' (edited)' WHERE id = (SELECT min(id) FROM block)",
    # a table stored as binary COPY (it has a vector column): kept or read whole
    "UPDATE archival_passages SET text = text || ' (edited)' WHERE id = (SELECT min(id) FROM archival_passages)",
)


def test_unchanged_rows_are_kept_and_streams_equal_a_full_read(
    letta_db, pg_cluster: Cluster, tmp_path: Path
) -> None:
    repo = small_repo(tmp_path / "repo")
    first = run_backup(repo, letta_db.admin_dsn)
    assert (
        first.incremental.parent is None
        and first.incremental.why_not == "no earlier snapshot of this database"
    )

    again = run_backup(repo, letta_db.admin_dsn)
    assert again.incremental.parent == first.snapshot.id
    assert again.incremental.tables_read == again.incremental.tables_partly_read == 0
    assert again.incremental.bytes_kept == first.snapshot.raw_size() > 0
    assert _streams(repo, again) == _streams(repo, first)

    _change(letta_db.admin_dsn, *_EDITS)
    incremental = run_backup(repo, letta_db.admin_dsn)
    full = run_backup(repo, letta_db.admin_dsn, full=True)
    assert full.incremental.why_not == "--full" and full.incremental.bytes_kept == 0
    changed = incremental.incremental
    assert changed.tables_partly_read >= 1  # messages: blobs away from the edited row are kept
    assert changed.tables_partly_read + changed.tables_read == 4  # messages, agents_tags, block, passages
    assert incremental.incremental.bytes_kept > 0.5 * full.snapshot.raw_size()
    assert _streams(repo, incremental) == _streams(repo, full)

    target = pg_cluster.dsn(f"{letta_db.dbname}_incr")
    run_restore(repo, incremental.snapshot.id, target)
    try:
        assert table_digests(target) == table_digests(letta_db.admin_dsn)
    finally:
        pg_cluster.drop_database(f"{letta_db.dbname}_incr")


def test_a_changed_table_definition_is_read_whole(letta_db, tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    run_backup(repo, letta_db.admin_dsn)
    # A column added with a constant default rewrites no row (their xmin stay old), yet every
    # row prints one more field: nothing of the table may be kept.
    _change(letta_db.admin_dsn, "ALTER TABLE agents_tags ADD COLUMN lifeboat_extra int DEFAULT 7")
    incremental = run_backup(repo, letta_db.admin_dsn)
    full = run_backup(repo, letta_db.admin_dsn, full=True)
    assert incremental.incremental.tables_read >= 1
    streams = _streams(repo, incremental)
    assert streams == _streams(repo, full)
    assert b"\t7\n" in streams[layout.table_stream_name("letta", "agents_tags")]


def test_another_database_is_never_a_parent(letta_db_factory, pg_cluster: Cluster, tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    one, other = letta_db_factory(pg_cluster), letta_db_factory(pg_cluster)
    run_backup(repo, one.admin_dsn)
    second = run_backup(repo, other.admin_dsn)
    assert second.incremental.parent is None and second.incremental.bytes_kept == 0
    third = run_backup(repo, one.admin_dsn)
    assert third.incremental.parent is not None and third.incremental.tables_read == 0


@pytest.mark.parametrize("tables", [("agents_tags",)])
def test_emptied_table_keeps_nothing(letta_db, tmp_path: Path, tables: tuple[str, ...]) -> None:
    repo = small_repo(tmp_path / "repo")
    run_backup(repo, letta_db.admin_dsn)
    _change(letta_db.admin_dsn, *(f"DELETE FROM {table}" for table in tables))
    incremental = run_backup(repo, letta_db.admin_dsn)
    streams = _streams(repo, incremental)
    assert all(streams[layout.table_stream_name("letta", table)] == b"" for table in tables)


def test_a_column_dropped_and_added_again_is_read_whole(letta_db, tmp_path: Path) -> None:
    """Same name, same type, no row rewritten: only the column's new position tells."""
    repo = small_repo(tmp_path / "repo")
    _change(letta_db.admin_dsn, "ALTER TABLE agents_tags ADD COLUMN lifeboat_note text DEFAULT 'before'")
    run_backup(repo, letta_db.admin_dsn)
    _change(
        letta_db.admin_dsn,
        "ALTER TABLE agents_tags DROP COLUMN lifeboat_note",
        "ALTER TABLE agents_tags ADD COLUMN lifeboat_note text DEFAULT 'after'",
    )
    incremental = run_backup(repo, letta_db.admin_dsn)
    streams = _streams(repo, incremental)
    assert streams == _streams(repo, run_backup(repo, letta_db.admin_dsn, full=True))
    assert b"before" not in streams[layout.table_stream_name("letta", "agents_tags")]


def test_too_many_keys_or_a_null_key_gives_no_per_key_plan(letta_db, tmp_path: Path) -> None:
    from lifeboat.pg.changes import key_counts, read_change_token
    from lifeboat.pg.models import QualifiedName

    with psycopg.connect(letta_db.admin_dsn) as conn:
        token = read_change_token(conn)
        assert token is not None
        messages = QualifiedName(schema="letta", name="messages")
        assert key_counts(conn, messages, "agent_id", token, max_keys=1) is None
        every = key_counts(conn, messages, "agent_id", token)
        assert every is not None and len(every) > 1 and not any(key.changed for key in every)
        # a NULL key has no place in a key range
        assert key_counts(conn, QualifiedName(schema="letta", name="messages"), "run_id", token) is None


def test_an_unchanged_table_keyed_by_integers_is_kept(letta_db, tmp_path: Path) -> None:
    """Integer ids sort unlike text ("10" < "9"): no per-key plan, yet an unchanged table is kept."""
    repo = small_repo(tmp_path / "repo")
    _change(
        letta_db.admin_dsn,
        "CREATE TABLE lifeboat_numbers (id int PRIMARY KEY, note text)",
        "INSERT INTO lifeboat_numbers SELECT n, repeat('x', 500) FROM generate_series(1, 200) n",
    )
    run_backup(repo, letta_db.admin_dsn)
    unchanged = run_backup(repo, letta_db.admin_dsn)
    assert unchanged.incremental.tables_read == unchanged.incremental.tables_partly_read == 0
    _change(letta_db.admin_dsn, "UPDATE lifeboat_numbers SET note = 'changed' WHERE id = 150")
    changed = run_backup(repo, letta_db.admin_dsn)
    assert changed.incremental.tables_read == 1
    assert _streams(repo, changed) == _streams(repo, run_backup(repo, letta_db.admin_dsn, full=True))


def test_a_parent_cut_without_keys_is_followed(
    letta_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parent written before keyed streams were cut where the key changes (its blobs end
    inside keys): the incremental still gives every row a full read gives, and what it rebuilds
    is cut where the key changes."""
    from lifeboat.repo.writer import RepositoryWriter

    repo = small_repo(tmp_path / "repo")
    open_stream = RepositoryWriter.open_stream
    with monkeypatch.context() as patch:
        patch.setattr(
            RepositoryWriter,
            "open_stream",
            lambda self, name, attributes=None, **_: open_stream(self, name, attributes),
        )
        parent = run_backup(repo, letta_db.admin_dsn)
    messages = layout.table_stream_name("letta", "messages")
    straddling = [a.zone_max == b.zone_min for a, b in pairwise(parent.snapshot.stream(messages).blobs)]
    assert any(straddling)  # the old cuts: some agent's messages span two blobs
    _change(letta_db.admin_dsn, *_EDITS)
    incremental = run_backup(repo, letta_db.admin_dsn)
    full = run_backup(repo, letta_db.admin_dsn, full=True)
    assert incremental.incremental.parent == parent.snapshot.id and incremental.incremental.bytes_kept > 0
    assert _streams(repo, incremental) == _streams(repo, full)
    max_size = repo.config.chunker.max_size
    for before, after in pairwise(full.snapshot.stream(messages).blobs):  # cut inside a key: only when full
        if before.zone_max >= after.zone_min:
            first_record = repo.read_blob(after.id).split(b"\n", 1)[0] + b"\n"
            assert before.raw_size + len(first_record) > max_size


def test_a_damaged_newest_manifest_is_passed_over_for_the_one_before(letta_db, tmp_path: Path) -> None:
    """A newest manifest that cannot be read is skipped: the parent is the one before."""
    repo = small_repo(tmp_path / "repo")
    first = run_backup(repo, letta_db.admin_dsn)
    second = run_backup(repo, letta_db.admin_dsn)
    manifest = tmp_path / "repo" / "snapshots" / second.snapshot.id
    damaged = bytearray(manifest.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    manifest.write_bytes(bytes(damaged))
    _change(letta_db.admin_dsn, *_EDITS[:2])
    third = run_backup(repo, letta_db.admin_dsn)
    assert third.incremental.parent == first.snapshot.id
    full = run_backup(repo, letta_db.admin_dsn, full=True)
    assert _streams(repo, third) == _streams(repo, full)
