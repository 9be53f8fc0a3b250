"""COPY TEXT streams: whole lines per batch, keys per row, ordering, bounded batches, copy in by name."""

from __future__ import annotations

import time

import psycopg
import pytest

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.pg.copystream import CopyBatch, _line_batches
from lifeboat.pg.models import QualifiedName
from lifeboat.sandbox.postgres import Cluster

TABLE = QualifiedName(schema="public", name="items")
COLUMNS = ["id", "agent_id", "body"]


@pytest.fixture
def items_dsn(pg_cluster: Cluster) -> str:
    name = f"copy_{time.monotonic_ns()}"
    pg_cluster.create_database(name)
    with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int, agent_id text, body text, extra text DEFAULT 'd')")
        conn.execute(
            r"""INSERT INTO items (id, agent_id, body)
                SELECT i, CASE WHEN i % 50 = 0 THEN NULL ELSE 'agent-' || (i % 7) END,
                       repeat(E'a\tb\nc\\d é ', i % 40)
                FROM generate_series(1, 5000) i ORDER BY random()"""
        )
    return pg_cluster.dsn(name)


def test_batches_are_whole_lines_with_one_key_per_row(items_dsn: str) -> None:
    with pg.connect(items_dsn) as conn:
        batches = list(
            pg.copy_out(
                conn, TABLE, COLUMNS, order_by=["agent_id", "id"], key_column="agent_id", batch_bytes=4096
            )
        )
    assert len(batches) > 10
    for batch in batches:
        assert batch.data.endswith(b"\n")
        assert batch.rows == batch.data.count(b"\n") == len(batch.keys or [])
        assert len(batch.data) < 4096 + 2000  # one batch plus at most one row
    keys = [key for batch in batches for key in batch.keys or []]
    assert sum(batch.rows for batch in batches) == 5000
    non_null = [key for key in keys if key != b"\\N"]
    assert non_null == sorted(non_null) and keys[-1] == b"\\N"  # ORDER BY agent_id: NULLs last
    rows = b"".join(batch.data for batch in batches).splitlines()
    assert [row.split(b"\t")[1] for row in rows] == keys


def test_copy_in_by_name_round_trips(items_dsn: str) -> None:
    with pg.connect(items_dsn) as source, pg.connect(items_dsn) as conn:
        conn.execute("CREATE TABLE items_copy (body text, extra text DEFAULT 'x', id int, agent_id text)")
        target = QualifiedName(schema="public", name="items_copy")
        chunks = (batch.data for batch in pg.copy_out(source, TABLE, COLUMNS, batch_bytes=1000))
        rows = pg.copy_in(conn, target, COLUMNS, _rechunk(chunks, 777), freeze=True)
        assert rows == 5000
        same = conn.execute(
            "SELECT count(*) FROM items i JOIN items_copy c ON c.id = i.id"
            " AND c.agent_id IS NOT DISTINCT FROM i.agent_id AND c.body = i.body AND c.extra = 'x'"
        ).fetchone()
    assert same == (5000,)


def _rechunk(chunks, size: int):  # type: ignore[no-untyped-def]
    """Cut the stream at arbitrary byte positions, as blobs read back from a repository would be."""
    data = b"".join(chunks)
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_split_rows_across_messages_are_reassembled() -> None:
    messages = [b"1\ta", b"bc\n2\t", b"x\n3\ty\n", b"4\t\\N\n"]
    batches = list(_line_batches(messages, key_index=1))
    assert b"".join(b.data for b in batches) == b"1\tabc\n2\tx\n3\ty\n4\t\\N\n"
    assert [k for b in batches for k in b.keys or []] == [b"abc", b"x", b"y", b"\\N"]
    with pytest.raises(DatabaseError, match="middle of a row"):
        list(_line_batches([b"1\tab"], key_index=None))


def test_unknown_key_column_and_table_fail_clearly(items_dsn: str) -> None:
    with pg.connect(items_dsn) as conn:
        with pytest.raises(DatabaseError, match="key column"):
            list(pg.copy_out(conn, TABLE, COLUMNS, key_column="nope"))
        with pytest.raises(DatabaseError, match=r"COPY out of public\.missing"):
            list(pg.copy_out(conn, QualifiedName(schema="public", name="missing"), ["id"]))


def test_batch_is_a_value() -> None:
    assert CopyBatch(b"a\n", 1) == CopyBatch(b"a\n", 1, None)


def test_stopping_after_the_last_batch_keeps_the_transaction(items_dsn: str) -> None:
    with pg.connect(items_dsn) as conn:
        conn.execute("BEGIN")
        batches = pg.copy_out(conn, TABLE, COLUMNS, batch_bytes=1 << 30)
        assert next(batches).rows == 5000
        batches.close()
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (5000,)
        conn.execute("COMMIT")


def test_stopping_in_the_middle_cancels_the_copy(items_dsn: str) -> None:
    """The rest of the table is not read for nothing: the COPY is cancelled, which aborts the
    connection's transaction (a snapshot worker is done after that)."""
    # ~40 MB, far more than loopback socket buffers hold: the server is still sending when the
    # iterator is closed (5,000 small rows could sit complete in the buffers on a loaded machine).
    with psycopg.connect(items_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO items (id, body) SELECT i, repeat('x', 200) FROM generate_series(5001, 205000) i"
        )
    with pg.connect(items_dsn) as conn:
        conn.execute("BEGIN")
        batches = pg.copy_out(conn, TABLE, COLUMNS, batch_bytes=1000)
        assert next(batches).rows > 0
        batches.close()
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (205000,)


def test_server_error_in_the_middle_of_a_copy_is_reported(items_dsn: str) -> None:
    # Far more than loopback socket buffers hold (several MB), so the server is still sending
    # when the cancel arrives: otherwise the COPY may already be complete and nothing fails.
    with psycopg.connect(items_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO items (id, body) SELECT i, repeat('x', 200) FROM generate_series(5001, 205000) i"
        )
    with pg.connect(items_dsn) as conn, pg.connect(items_dsn) as killer:
        pid = conn.info.backend_pid
        batches = pg.copy_out(conn, TABLE, COLUMNS, order_by=["id"], batch_bytes=100)
        next(batches)
        killer.execute("SELECT pg_cancel_backend(%s)", (pid,))
        with pytest.raises(DatabaseError, match="canceling statement due to user request"):
            for _ in batches:
                time.sleep(0.001)
        assert conn.execute("SELECT 1").fetchone() == (1,)
