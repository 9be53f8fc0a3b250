"""Database comparisons shared by the test folders: content hashes per table, normalised schema dumps."""

from __future__ import annotations

import re
import subprocess

import psycopg
from psycopg import sql


def table_digests(dsn: str, schema: str | None = "letta") -> dict[str, tuple[int, str]]:
    """Row count and md5 of each table's rows in a stable order (content, not physical layout).

    Tables of ``schema`` keyed by name; with ``schema=None`` every user schema's tables, keyed
    ``schema.table``. The one table digest of the test suite.
    """
    digests = {}
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%%' AND (%s::text IS NULL OR n.nspname = %s) ORDER BY 1, 2",
            (schema, schema),
        ).fetchall()
        for schema_name, table in tables:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) "
                    "FROM {} t"
                ).format(sql.Identifier(schema_name, table))
            ).fetchone()
            assert row is not None
            digests[table if schema else f"{schema_name}.{table}"] = (row[0], row[1])
    return digests


_DROP_LINE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\('search_path'.*|\\(un)?restrict .*|)$")


def normalized_schema(pg_dump: str, dsn: str) -> str:
    """``pg_dump --schema-only`` without comments, SET lines, ``\\restrict`` lines and blank lines."""
    out = subprocess.run([pg_dump, "--schema-only", dsn], check=True, capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if not _DROP_LINE.match(line))
