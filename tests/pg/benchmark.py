"""Throughput of lifeboat.pg against psql/pg_dump/pg_restore on a throwaway cluster.

Run: ``.venv/bin/python -m tests.pg.benchmark [--mb 200] [--flavor pg18]``. Not collected by
pytest (it takes a minute and measures, rather than checks).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from lifeboat import pg
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.sandbox.postgres import Cluster, start_cluster

ROW_BYTES = 700  # roughly what one generated message row weighs in COPY text


def build(cluster: Cluster, megabytes: int) -> str:
    cluster.create_database("bench")
    rows = megabytes * 1_000_000 // ROW_BYTES
    with psycopg.connect(cluster.dsn("bench"), autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE messages (id varchar PRIMARY KEY, agent_id varchar NOT NULL, role varchar NOT NULL,
                text text, content json, sequence_id bigint NOT NULL UNIQUE, created_at timestamptz DEFAULT now());
            CREATE INDEX ix_messages_agent_created_at ON messages (agent_id, created_at);
            CREATE TABLE steps (id varchar PRIMARY KEY, agent_id varchar, tokens int, payload json);
            CREATE TABLE passages (id varchar PRIMARY KEY, agent_id varchar, text text);
            CREATE INDEX ix_passages_agent ON passages (agent_id);
            """
        )
        conn.execute(
            """
            INSERT INTO messages
            SELECT 'message-' || md5(i::text), 'agent-' || (i %% 500), CASE WHEN i %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                   repeat(md5(i::text) || E' \\t words ', 6),
                   json_build_object('type', 'text', 'text', repeat(md5((i + 1)::text), 5)),
                   i, now() - i * interval '1 second'
            FROM generate_series(1, %s) i
            """,
            (rows,),
        )
        conn.execute(
            """INSERT INTO steps SELECT 'step-' || i, 'agent-' || (i %% 500), i,
                   json_build_object('usage', repeat('u', 300)) FROM generate_series(1, %s) i""",
            (rows // 3,),
        )
        conn.execute(
            "INSERT INTO passages SELECT 'passage-' || i, 'agent-' || (i %% 500), repeat('p', 400)"
            " FROM generate_series(1, %s) i",
            (rows // 3,),
        )
        conn.execute("VACUUM ANALYZE")
    return cluster.dsn("bench")


def timed(label: str, action: Callable[[], object], results: dict[str, float]) -> float:
    start = time.perf_counter()
    outcome = action()
    elapsed = time.perf_counter() - start
    results[label] = elapsed
    rate = f"  {outcome / elapsed / 1e6:7.1f} MB/s" if isinstance(outcome, int) and outcome else ""
    details = (
        "  " + ", ".join(f"{k} {v:.2f}s" for k, v in outcome.items()) if isinstance(outcome, dict) else ""
    )
    print(f"{label:<52} {elapsed:7.2f} s{rate}{details}", flush=True)
    return elapsed


def copy_out_size(dsn: str, table: TableDef, **options: object) -> int:
    with pg.connect(dsn) as conn:
        return sum(
            len(batch.data) for batch in pg.copy_out(conn, table.qualified, table.copy_columns, **options)
        )  # type: ignore[arg-type]


def backup_in_memory(dsn: str, jobs: int) -> tuple[DatabaseSchema, dict[str, list[bytes]]]:
    with pg.SharedSnapshot(dsn) as snap:
        with snap.connection() as conn:
            schema = pg.capture_schema(conn)

        def copy(conn: psycopg.Connection, table: TableDef) -> list[bytes]:
            return [
                b.data for b in pg.copy_out(conn, table.qualified, table.copy_columns, key_column="agent_id")
            ]

        tables = schema.tables_biggest_first()
        data = snap.map(copy, tables, jobs=jobs)
    return schema, {str(t.qualified): d for t, d in zip(tables, data, strict=True)}


def restore_from_memory(
    cluster: Cluster, name: str, schema: DatabaseSchema, data: dict[str, list[bytes]], jobs: int
) -> dict[str, float]:
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def phase(label: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[label] = now - clock
        clock = now

    with pg.connect(cluster.dsn()) as admin:
        pg.create_database(admin, name)
        pg.apply_database_settings(admin, schema, name)
    dsn = cluster.dsn(name)
    with pg.connect(dsn) as conn:
        pg.apply_pre_data(conn, schema)
    phase("pre-data")

    def load(conn: psycopg.Connection, table: TableDef) -> int:
        return pg.copy_in(conn, table.qualified, table.copy_columns, data[str(table.qualified)], freeze=True)

    pg.run_on_connections(lambda: pg.connect(dsn), schema.tables_biggest_first(), load, jobs)
    phase("data")
    pg.apply_post_data(dsn, schema, jobs=jobs)
    phase("post-data")
    with pg.connect(dsn) as conn:
        pg.apply_sequence_values(conn, schema)
    pg.analyze(dsn, schema.tables, jobs=jobs)
    phase("sequences+analyze")
    return phases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200, help="size of the messages table in COPY text")
    parser.add_argument("--flavor", default="pg18")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with start_cluster(args.flavor) as cluster, tempfile.TemporaryDirectory() as scratch:
        dsn = build(cluster, args.mb)
        with pg.connect(dsn) as conn:
            schema = pg.capture_schema(conn)
        messages = schema.table("public", "messages")
        psql = cluster.tool("psql")

        def raw_copy() -> int:
            out = subprocess.run(
                [psql, dsn, "-c", "COPY messages TO STDOUT"], check=True, capture_output=True
            )
            return len(out.stdout)

        timed("messages: psql COPY TO STDOUT (raw)", raw_copy, results)
        timed("messages: copy_out iterator", lambda: copy_out_size(dsn, messages), results)
        timed(
            "messages: copy_out + key column",
            lambda: copy_out_size(dsn, messages, key_column="agent_id"),
            results,
        )
        timed(
            "messages: copy_out ordered by (agent_id, id) + key",
            lambda: copy_out_size(dsn, messages, key_column="agent_id", order_by=["agent_id", "id"]),
            results,
        )
        total = sum(copy_out_size(dsn, t) for t in schema.tables)
        captured: dict[str, tuple[DatabaseSchema, dict[str, list[bytes]]]] = {}

        def ours() -> int:
            captured["backup"] = backup_in_memory(dsn, args.jobs)
            return total

        timed(f"all tables: lifeboat backup to memory, {args.jobs} jobs", ours, results)
        dump = Path(scratch) / "bench.dump"
        timed(
            "all tables: pg_dump -Fc",
            lambda: (
                subprocess.run([cluster.tool("pg_dump"), "-Fc", "-f", str(dump), dsn], check=True) and None
            ),
            results,
        )
        timed(
            f"all tables: pg_dump -Fd -j{args.jobs}",
            lambda: (
                subprocess.run(
                    [cluster.tool("pg_dump"), "-Fd", f"-j{args.jobs}", "-f", str(Path(scratch) / "dir"), dsn],
                    check=True,
                )
                and None
            ),
            results,
        )
        cluster.execute("CREATE DATABASE pgrestore")
        timed(
            f"restore: pg_restore -j{args.jobs}",
            lambda: (
                subprocess.run(
                    [cluster.tool("pg_restore"), f"-j{args.jobs}", "-d", cluster.dsn("pgrestore"), str(dump)],
                    check=True,
                )
                and None
            ),
            results,
        )
        schema_b, data = captured["backup"]
        timed(
            f"restore: lifeboat from memory, {args.jobs} jobs",
            lambda: restore_from_memory(cluster, "ours", schema_b, data, args.jobs),
            results,
        )


if __name__ == "__main__":
    main()
