"""Database comparisons shared by the test folders: content hashes per table, normalised schema dumps."""

from __future__ import annotations

import re
import subprocess

import psycopg
from psycopg import sql


def table_digests(dsn: str, schema: str = "letta") -> dict[str, tuple[int, str]]:
    """Row count and md5 of each table's rows in a stable order (content, not physical layout)."""
    digests = {}
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = %s ORDER BY 1",
                (schema,),
            )
        ]
        for table in tables:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) "
                    "FROM {} t"
                ).format(sql.Identifier(schema, table))
            ).fetchone()
            assert row is not None
            digests[table] = (row[0], row[1])
    return digests


_DROP_LINE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\('search_path'.*|\\(un)?restrict .*|)$")


def normalized_schema(pg_dump: str, dsn: str) -> str:
    """``pg_dump --schema-only`` without comments, SET lines, ``\\restrict`` lines and blank lines."""
    out = subprocess.run([pg_dump, "--schema-only", dsn], check=True, capture_output=True, text=True).stdout
    return "\n".join(line for line in out.splitlines() if not _DROP_LINE.match(line))
