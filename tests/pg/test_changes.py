"""What changed per key since a change token, on a real server: listed transaction ids and ages
agree, and a big table's change scan may run in parallel workers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from lifeboat.pg.changes import (
    ChangeToken,
    KeyCount,
    _changed_expression,
    key_counts,
    read_change_token,
    table_count,
)
from lifeboat.pg.models import QualifiedName
from lifeboat.sandbox.postgres import Cluster

TABLE = QualifiedName(schema="public", name="kv")


@pytest.fixture
def dsn(pg_cluster: Cluster) -> Iterator[str]:
    name = f"changes_{time.monotonic_ns()}"
    pg_cluster.create_database(name)
    try:
        yield pg_cluster.dsn(name)
    finally:
        pg_cluster.drop_database(name)


def _token(dsn: str) -> ChangeToken:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        token = read_change_token(conn)
    assert token is not None
    return token


def _run(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def test_listed_ids_and_ages_find_the_same_changes(dsn: str) -> None:
    _run(
        dsn,
        "CREATE TABLE kv (k text, v int)",
        "INSERT INTO kv SELECT k, i FROM unnest('{a,b,c}'::text[]) k, generate_series(1, 3) i",
    )
    since = _token(dsn)
    _run(
        dsn,
        "UPDATE kv SET v = 7 WHERE k = 'b' AND v = 1",
        "DELETE FROM kv WHERE k = 'c' AND v = 2",
        "INSERT INTO kv VALUES ('d', 1)",
        "BEGIN; INSERT INTO kv VALUES ('e', 1); ROLLBACK",  # an aborted id in the range
    )
    expected = [
        KeyCount("a", 3, False),
        KeyCount("b", 3, True),
        KeyCount("c", 2, False),
        KeyCount("d", 1, True),
    ]
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        now = read_change_token(conn)
        assert now is not None and now.xmax - since.xmin >= 3
        assert key_counts(conn, TABLE, "k", since, now=now) == expected
        assert key_counts(conn, TABLE, "k", since) == expected  # by age
        assert table_count(conn, TABLE, since, now=now) == table_count(conn, TABLE, since) == (9, True)
        # nothing written since the current snapshot's own xmin
        assert not any(count.changed for count in key_counts(conn, TABLE, "k", now, now=now) or [])
        assert table_count(conn, TABLE, now, now=now) == (9, False)


def test_a_big_table_scan_for_changes_may_use_parallel_workers(dsn: str) -> None:
    """Listed ids are parallel safe (``age`` is not: the leader compares every row's age)."""
    _run(
        dsn,
        "CREATE TABLE kv (k text, v int)",
        "INSERT INTO kv SELECT (i % 100)::text, i FROM generate_series(1, 100000) i",
        "ANALYZE kv",
    )
    since = _token(dsn)
    _run(dsn, "UPDATE kv SET v = 0 WHERE v = 5")
    with psycopg.connect(dsn) as conn:
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            conn.execute(f"SET {setting} = 0")  # type: ignore[arg-type]
        now = read_change_token(conn)
        assert now is not None

        def plan(token: ChangeToken | None) -> str:
            query = sql.SQL("EXPLAIN SELECT k, count(*), bool_or({}) FROM kv GROUP BY k").format(
                _changed_expression(since, token)
            )
            return "\n".join(row[0] for row in conn.execute(query).fetchall())

        # the change test evaluated by the workers (aggregated there), not above a Gather
        assert "Partial" in plan(now) and "Partial" not in plan(None)
        counts = key_counts(conn, TABLE, "k", since, now=now)
        assert counts is not None and [count.key for count in counts if count.changed] == ["5"]
