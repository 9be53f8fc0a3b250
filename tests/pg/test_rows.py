"""Writing rows into live tables: COPY of text lines in batches, upsert that counts only real
changes, and parents-first ordering of tables."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from lifeboat.errors import LifeboatError
from lifeboat.pg.rows import COPY_BATCH_BYTES, copy_lines, topological, upsert
from lifeboat.sandbox.postgres import Cluster


@pytest.fixture
def conn(pg_cluster: Cluster) -> Iterator[psycopg.Connection]:
    name = f"rows_{time.monotonic_ns()}"
    pg_cluster.create_database(name)
    with psycopg.connect(pg_cluster.dsn(name)) as connection:
        connection.execute("CREATE TABLE items (id int PRIMARY KEY, body text, later text)")
        connection.execute("CREATE TABLE links (a int, b int, PRIMARY KEY (a, b))")
        connection.execute("CREATE TEMP TABLE stage (LIKE items)")
        yield connection


def test_copy_lines_sends_text_lines_in_batches(conn: psycopg.Connection) -> None:
    body = "x" * 1000
    lines = [f"{i}\t{body}\\tescaped\t\\N\n".encode() for i in range(3 * COPY_BATCH_BYTES // 1000)]
    copy_lines(conn, sql.Identifier("stage"), ["id", "body", "later"], iter(lines))
    count, tabs, nulls = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE body LIKE '%' || E'\\t' || 'escaped'), count(*) FILTER "
        "(WHERE later IS NULL) FROM stage"
    ).fetchone()  # type: ignore[misc]
    assert count == tabs == nulls == len(lines)


def test_upsert_inserts_updates_changed_rows_only_and_nulls_deferred_columns(
    conn: psycopg.Connection,
) -> None:
    conn.execute("INSERT INTO items VALUES (1, 'same', NULL), (2, 'old', NULL)")
    conn.execute(
        "INSERT INTO stage VALUES (1, 'same', NULL), (2, 'new', 'set later'), (3, 'added', 'set later')"
    )
    written = upsert(
        conn,
        sql.Identifier("items"),
        sql.Identifier("stage"),
        ["id", "body", "later"],
        ["id"],
        null_columns=["later"],
    )
    assert written == 2  # row 1 is unchanged (its 'later' is written NULL, as it already is)
    rows = conn.execute("SELECT id, body, later FROM items ORDER BY id").fetchall()
    assert rows == [(1, "same", None), (2, "new", None), (3, "added", None)]
    assert upsert(conn, sql.Identifier("items"), sql.Identifier("stage"), ["id", "body"], ["id"]) == 0


def test_upsert_of_key_only_rows_ignores_existing_ones(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO links VALUES (1, 1)")
    conn.execute("CREATE TEMP TABLE link_stage AS SELECT * FROM (VALUES (1, 1), (1, 2)) v(a, b)")
    assert upsert(conn, sql.Identifier("links"), sql.Identifier("link_stage"), ["a", "b"], ["a", "b"]) == 1
    assert conn.execute("SELECT count(*) FROM links").fetchone() == (2,)


def test_topological_puts_parents_first_and_refuses_cycles() -> None:
    edges = [
        ("messages", "agents"),
        ("messages", "steps"),
        ("steps", "agents"),
        ("agents", "agents"),
        ("x", "gone"),
    ]
    assert topological(["messages", "steps", "agents", "x"], edges) == ["agents", "x", "steps", "messages"]
    with pytest.raises(LifeboatError, match="cycle among a, b"):
        topological(["a", "b", "c"], [("a", "b"), ("b", "a")])
