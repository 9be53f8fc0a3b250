"""N workers copying in one shared snapshot while a writer keeps committing."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.pg.models import QualifiedName
from lifeboat.sandbox.postgres import Cluster

TABLES = [QualifiedName(schema="public", name=f"t{i}") for i in range(4)]


def _writer(dsn: str, stop: threading.Event, committed: list[int]) -> None:
    """Each transaction adds row i to every table: any consistent instant has equal tables."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        i = 1000
        while not stop.is_set():
            i += 1
            with conn.transaction():
                for table in TABLES:
                    conn.execute(f"INSERT INTO {table.name} VALUES (%s, repeat('x', 100))", (i,))  # type: ignore[arg-type]
            committed.append(i)


@pytest.fixture
def writer_db(pg_cluster: Cluster) -> str:
    name = f"snapshot_{time.monotonic_ns()}"
    pg_cluster.create_database(name)
    with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"CREATE TABLE {table.name} (id int, payload text)")  # type: ignore[arg-type]
            conn.execute(f"INSERT INTO {table.name} SELECT i, 'seed' FROM generate_series(1, 1000) i")  # type: ignore[arg-type]
    return pg_cluster.dsn(name)


def test_workers_see_one_instant_while_a_writer_commits(writer_db: str) -> None:
    stop, committed = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(writer_db, stop, committed))
    writer.start()
    try:
        while len(committed) < 20:
            time.sleep(0.01)
        with pg.SharedSnapshot(writer_db, lock=TABLES) as snap:
            (count_in_snapshot,) = snap.query("SELECT count(*) FROM t0")[0]

            def copy_slowly(conn: psycopg.Connection, table: QualifiedName) -> list[bytes]:
                time.sleep(0.2 * TABLES.index(table))  # the writer commits more in between
                rows = b"".join(
                    batch.data for batch in pg.copy_out(conn, table, ["id", "payload"], order_by=["id"])
                )
                return rows.splitlines()

            copies = snap.map(copy_slowly, TABLES, jobs=3)
            (count_in_snapshot_later,) = snap.query("SELECT count(*) FROM t0")[0]
        with psycopg.connect(writer_db) as conn:
            (count_now,) = conn.execute("SELECT count(*) FROM t0").fetchone()  # type: ignore[misc]
    finally:
        stop.set()
        writer.join()
    assert all(copy == copies[0] for copy in copies)
    assert len(copies[0]) == count_in_snapshot == count_in_snapshot_later
    assert count_now > count_in_snapshot  # writes went on during the copy


def test_snapshot_reports_a_failing_worker(writer_db: str) -> None:
    missing = QualifiedName(schema="public", name="no_such_table")
    with pg.SharedSnapshot(writer_db) as snap, pytest.raises(DatabaseError, match="no_such_table"):
        snap.map(lambda conn, table: list(pg.copy_out(conn, table, ["id"])), [TABLES[0], missing], jobs=2)


def test_worker_cannot_outlive_the_exporter(writer_db: str) -> None:
    snap = pg.SharedSnapshot(writer_db)
    with snap:
        snapshot_id = snap.snapshot_id
    assert snapshot_id
    with pytest.raises(DatabaseError, match="not open"):
        snap.open_worker()


def test_workers_opened_ahead_see_the_snapshot_and_unused_ones_are_closed(writer_db: str) -> None:
    """Workers opened while the caller still works import the same snapshot; the ones ``map`` did
    not take are closed with it."""

    def others(conn: psycopg.Connection) -> int:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]

    with psycopg.connect(writer_db, autocommit=True) as watch:
        before = others(watch)
        with pg.SharedSnapshot(writer_db) as snap:
            snap.open_workers_ahead(3)
            (count,) = snap.query("SELECT count(*) FROM t0")[0]
            watch.execute("INSERT INTO t0 VALUES (1, 'after the snapshot')")
            seen = snap.map(
                lambda conn, table: conn.execute(f"SELECT count(*) FROM {table.name}").fetchone(),
                TABLES[:1],
                jobs=1,
            )  # type: ignore[arg-type]
            assert seen == [(count,)]
        deadline = time.monotonic() + 10
        while others(watch) != before and time.monotonic() < deadline:
            time.sleep(0.05)  # a closed connection's backend leaves pg_stat_activity when it has exited
        assert others(watch) == before


def test_the_snapshot_plans_without_parallel_workers_for_its_transactions_only(writer_db: str) -> None:
    """The exporter's and every worker's transaction plan serially (their statements already share
    the cores); a later transaction on the exporter's connection has the server's setting again."""
    setting = "SELECT current_setting('max_parallel_workers_per_gather')"
    with psycopg.connect(writer_db) as conn:
        (configured,) = conn.execute(setting).fetchone()  # type: ignore[misc]
    with pg.SharedSnapshot(writer_db) as snap:
        (exporter,) = snap.query(setting)[0]
        seen = snap.map(lambda conn, table: conn.execute(setting).fetchone()[0], TABLES[:2], jobs=2)  # type: ignore[index]
        with snap.connection() as conn:
            conn.execute("ROLLBACK")
            (after,) = conn.execute(setting).fetchone()  # type: ignore[misc]
            conn.execute("BEGIN")  # for close(), which ends the transaction it expects
    assert configured != "0"
    assert (exporter, seen, after) == ("0", ["0", "0"], configured)
