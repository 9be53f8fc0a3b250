"""Throughput of lifeboat.pg against psql/pg_dump/pg_restore on a throwaway cluster.

Run: ``.venv/bin/python -m tests.pg.benchmark [--mb 200] [--flavor pg18]``. Not collected by
pytest (it takes a minute and measures, rather than checks).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import zstandard

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


_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(cluster: Cluster) -> float:
    """CPU used by the cluster so far: the postmaster, its reaped children and its live ones.

    On a shared, loaded machine wall time says little; CPU seconds (server + client) say what
    a dedicated 2-core machine would have to spend.
    """
    postmaster = int((cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    total = _proc_cpu(postmaster, include_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def _proc_cpu(pid: int, include_children: bool) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if include_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def client_cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


Results = dict[str, list[dict[str, float]]]


def timed(label: str, action: Callable[[], object], cluster: Cluster, results: Results) -> None:
    wall, client, server = time.perf_counter(), client_cpu_seconds(), server_cpu_seconds(cluster)
    outcome = action()
    time.sleep(0.2)  # let exiting backends be reaped into the postmaster's children times
    wall = time.perf_counter() - wall
    client = client_cpu_seconds() - client
    server = server_cpu_seconds(cluster) - server
    results.setdefault(label, []).append({"wall": wall, "client_cpu": client, "server_cpu": server})
    rate = f"  {outcome / wall / 1e6:6.1f} MB/s" if isinstance(outcome, int) and outcome else ""
    details = (
        "  " + ", ".join(f"{k} {v:.2f}s" for k, v in outcome.items()) if isinstance(outcome, dict) else ""
    )
    print(
        f"{label:<58} wall {wall:6.2f}s  cpu client {client:5.2f}s server {server:5.2f}s"
        f" total {client + server:5.2f}s{rate}{details}",
        flush=True,
    )


def copy_out_size(dsn: str, table: TableDef, **options: object) -> int:
    with pg.connect(dsn) as conn:
        return sum(
            len(batch.data) for batch in pg.copy_out(conn, table.qualified, table.copy_columns, **options)
        )  # type: ignore[arg-type]


def backup_in_memory(
    dsn: str, jobs: int, *, compress: bool = False
) -> tuple[DatabaseSchema, dict[str, list[bytes]]]:
    """Every table through copy_out in one shared snapshot; ``compress``: zstd each batch in the
    worker thread, as the repository layer will (pg_dump -Fc compresses too)."""
    with pg.SharedSnapshot(dsn) as snap:
        with snap.connection() as conn:
            schema = pg.capture_schema(conn)

        def copy(conn: psycopg.Connection, table: TableDef) -> list[bytes]:
            batches = pg.copy_out(conn, table.qualified, table.copy_columns, key_column="agent_id")
            if not compress:
                return [b.data for b in batches]
            compressor = zstandard.ZstdCompressor(level=3)
            return [compressor.compress(b.data) for b in batches]

        tables = schema.tables_biggest_first()
        data = snap.map(copy, tables, jobs=jobs)
    return schema, {str(t.qualified): d for t, d in zip(tables, data, strict=True)}


def restore_from_memory(
    cluster: Cluster,
    name: str,
    schema: DatabaseSchema,
    data: dict[str, list[bytes]],
    jobs: int,
    *,
    pipelined: bool,
    freeze: bool = True,
    analyze: bool = True,
    split: bool = False,
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

    def load(conn: psycopg.Connection, part: pg.TablePart) -> int:
        table = part.table
        chunks = part.slice(data[str(table.qualified)])
        return pg.copy_in(conn, table.qualified, table.copy_columns, chunks, freeze=freeze and part.whole)

    if pipelined:
        parts = pg.parts_per_table(schema.tables, jobs) if split else None
        pg.load_and_apply_post_data(dsn, schema, load, jobs=jobs, parts=parts, analyze_tables=analyze)
        phase("data+post-data+analyze")
    else:
        whole_tables = [pg.TablePart(table) for table in schema.tables_biggest_first()]
        pg.run_on_connections(lambda: pg.connect(dsn), whole_tables, load, jobs)
        phase("data")
        pg.apply_post_data(dsn, schema, jobs=jobs)
        phase("post-data")
        pg.analyze(dsn, schema.tables, jobs=jobs)
        phase("analyze")
    with pg.connect(dsn) as conn:
        pg.apply_sequence_values(conn, schema)
    return phases


def measure_round(
    cluster: Cluster, dsn: str, scratch: Path, jobs: int, round_number: int, results: Results
) -> None:
    with pg.connect(dsn) as conn:
        schema = pg.capture_schema(conn)
    messages = schema.table("public", "messages")
    messages_bytes = copy_out_size(dsn, messages)
    psql, pg_dump, pg_restore = cluster.tool("psql"), cluster.tool("pg_dump"), cluster.tool("pg_restore")

    def run(*args: str) -> None:
        subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)

    def raw_copy() -> int:
        run(psql, dsn, "-c", "COPY messages TO STDOUT")
        return messages_bytes

    timed("messages: psql COPY TO STDOUT > /dev/null", raw_copy, cluster, results)
    timed("messages: copy_out iterator", lambda: copy_out_size(dsn, messages), cluster, results)
    timed(
        "messages: copy_out + key column",
        lambda: copy_out_size(dsn, messages, key_column="agent_id"),
        cluster,
        results,
    )
    timed(
        "messages: copy_out ordered by (agent_id, id) + key",
        lambda: copy_out_size(dsn, messages, key_column="agent_id", order_by=["agent_id", "id"]),
        cluster,
        results,
    )
    total = sum(copy_out_size(dsn, t) for t in schema.tables)
    captured: dict[str, tuple[DatabaseSchema, dict[str, list[bytes]]]] = {}

    def ours() -> int:
        captured["backup"] = backup_in_memory(dsn, jobs)
        return total

    timed(f"backup: lifeboat to memory, {jobs} jobs", ours, cluster, results)
    timed(
        f"backup: lifeboat + zstd-3, {jobs} jobs",
        lambda: backup_in_memory(dsn, jobs, compress=True) and total,
        cluster,
        results,
    )
    dump = scratch / f"bench{round_number}.dump"
    timed("backup: pg_dump -Fc", lambda: run(pg_dump, "-Fc", "-f", str(dump), dsn), cluster, results)
    directory = str(scratch / f"dir{round_number}")
    timed(
        f"backup: pg_dump -Fd -j{jobs}",
        lambda: run(pg_dump, "-Fd", f"-j{jobs}", "-f", directory, dsn),
        cluster,
        results,
    )
    target = f"pgrestore{round_number}"
    cluster.execute(f"CREATE DATABASE {target}")
    timed(
        f"restore: pg_restore -j{jobs}",
        lambda: run(pg_restore, f"-j{jobs}", "-d", cluster.dsn(target), str(dump)),
        cluster,
        results,
    )
    schema_b, data = captured["backup"]
    variants = [
        ("pipelined", {"pipelined": True}),
        ("pipelined, biggest table split", {"pipelined": True, "split": True}),
        ("pipelined, no FREEZE", {"pipelined": True, "freeze": False}),
        ("pipelined, no ANALYZE", {"pipelined": True, "analyze": False}),
        ("phase by phase", {"pipelined": False}),
    ]
    for number, (label, options) in enumerate(variants):
        timed(
            f"restore: lifeboat from memory, {jobs} jobs, {label}",
            lambda number=number, options=options: restore_from_memory(  # type: ignore[misc]
                cluster, f"ours_{round_number}_{number}", schema_b, data, jobs, **options
            ),
            cluster,
            results,
        )


def summarize(results: Results) -> None:
    print("\nbest of each (wall; client+server CPU):")
    for label, runs in results.items():
        wall = min(run["wall"] for run in runs)
        cpu = min(run["client_cpu"] + run["server_cpu"] for run in runs)
        print(f"  {label:<58} wall {wall:6.2f}s  cpu {cpu:6.2f}s  ({len(runs)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200, help="size of the messages table in COPY text")
    parser.add_argument("--flavor", default="pg18")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the summary keeps the best of each")
    args = parser.parse_args()
    results: Results = {}
    with start_cluster(args.flavor) as cluster, tempfile.TemporaryDirectory() as scratch:
        dsn = build(cluster, args.mb)
        for round_number in range(args.repeat):
            measure_round(cluster, dsn, Path(scratch), args.jobs, round_number, results)
    summarize(results)


if __name__ == "__main__":
    main()
