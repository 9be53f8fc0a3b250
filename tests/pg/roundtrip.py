"""Backup → restore with lifeboat.pg only (no repository), and the comparisons the tests make."""

from __future__ import annotations

import re
import subprocess

import dbcompare
import psycopg

from lifeboat import pg
from lifeboat.pg.models import DatabaseSchema, TableDef
from lifeboat.sandbox.postgres import Cluster


def capture(source_dsn: str) -> DatabaseSchema:
    with pg.SharedSnapshot(source_dsn) as snap, snap.connection() as conn:
        return pg.capture_schema(conn)


def restore(
    source_dsn: str, target: Cluster, target_db: str, *, jobs: int = 2, pipelined: bool = True
) -> tuple[DatabaseSchema, pg.ApplyReport]:
    """Capture the source in a shared snapshot, recreate it as ``target_db`` and copy every table.

    ``pipelined``: loads and post-data on one scheduler (load_and_apply_post_data); else phase
    by phase (copy everything, apply_post_data, analyze)."""
    with pg.SharedSnapshot(source_dsn) as snap:
        with snap.connection() as conn:
            schema = pg.capture_schema(conn)
        with pg.connect(target.dsn()) as admin:
            owner = schema.database.owner if pg.role_exists(admin, schema.database.owner) else None
            pg.create_database(admin, target_db, owner=owner)
            report = pg.apply_database_settings(admin, schema, target_db)
        target_dsn = target.dsn(target_db)
        with pg.connect(target_dsn) as conn:
            pg.apply_pre_data(conn, schema, report)

        if pipelined:

            def load(destination: psycopg.Connection, part: pg.TablePart) -> int:
                table = part.table
                with snap.worker() as source:  # each part reads it all, keeps every count-th batch
                    batches = pg.copy_out(source, table.qualified, table.copy_columns, batch_bytes=4096)
                    chunks = (b.data for n, b in enumerate(batches) if n % part.count == part.index)
                    return pg.copy_in(
                        destination, table.qualified, table.copy_columns, chunks, freeze=part.whole
                    )

            biggest = schema.tables_biggest_first()[0]
            parts = {str(biggest.qualified): 3} | {
                str(t.qualified): 1 for t in schema.tables_biggest_first()[1:]
            }
            pg.load_and_apply_post_data(target_dsn, schema, load, jobs=jobs, parts=parts, report=report)
        else:

            def copy_table(source: psycopg.Connection, table: TableDef) -> int:
                with pg.connect(target_dsn) as destination:
                    batches = pg.copy_out(source, table.qualified, table.copy_columns)
                    chunks = (batch.data for batch in batches)
                    return pg.copy_in(destination, table.qualified, table.copy_columns, chunks, freeze=True)

            snap.map(copy_table, schema.tables_biggest_first(), jobs=jobs)
    if not pipelined:
        pg.apply_post_data(target_dsn, schema, jobs=jobs, report=report)
        pg.analyze(target_dsn, schema.tables, jobs=jobs)
    with pg.connect(target_dsn) as conn:
        pg.apply_sequence_values(conn, schema)
    return schema, report


def table_digests(dsn: str) -> dict[str, tuple[int, str]]:
    """Row count and md5 of every user table's rows (``schema.table``), in a stable order."""
    return dbcompare.table_digests(dsn, schema=None)


_DROP_LINE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\('search_path'.*|\\(un)?restrict .*|)$")


_NAMED_NOT_NULL = re.compile(r"CONSTRAINT \S+ NOT NULL")


def normalized_schema_dump(pg_dump: str, dsn: str, *, drop_not_null_names: bool = False) -> str:
    """``pg_dump --schema-only`` without comments, SET lines, ``\\restrict`` and blank lines.

    ``drop_not_null_names``: PostgreSQL 18 names NOT NULL constraints, older majors cannot;
    compare a PG18 source with an older target without them.
    """
    result = subprocess.run([pg_dump, "--schema-only", dsn], check=True, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if not _DROP_LINE.match(line)]
    if drop_not_null_names:
        lines = [_NAMED_NOT_NULL.sub("NOT NULL", line) for line in lines]
    return "\n".join(lines)


def newest_pg_dump(*clusters: Cluster) -> str:
    """A pg_dump refuses newer servers, so compare dumps made with the newest one at hand."""
    return max(clusters, key=lambda cluster: cluster.major).tool("pg_dump")
