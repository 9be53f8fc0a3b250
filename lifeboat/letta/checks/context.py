"""Positioning a verify session on the Letta schema and learning its shape.

Letta's ``init.sql`` puts every table in a schema named after the database and points the
database-level ``search_path`` at it; a restore that forgot that setting leaves the tables
invisible to the server. So verify does not trust the session's search_path: it finds the schema
holding Letta's tables itself, pins ``search_path`` to it for its own transaction, and reports
separately (check ``schema``) whether Letta's role would find it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from lifeboat.letta.checks.base import CheckContext
from lifeboat.letta.schema_shape import capture_columns

LETTA_MARKER_TABLES = ("agents", "messages", "block")

_CANDIDATE_SCHEMAS_SQL = """
SELECT n.nspname, count(*) AS marker_tables,
       n.nspname = ANY (current_schemas(false)) AS on_path,
       n.nspname = current_database() AS named_like_db
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relname = ANY (%s)
GROUP BY n.nspname
ORDER BY count(*) DESC, 3 DESC, 4 DESC, n.nspname
"""

_ROW_KEYS_SQL = """
SELECT DISTINCT ON (c.relname) c.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = %s::regnamespace AND con.contype IN ('p', 'u')
ORDER BY c.relname, (con.contype = 'p') DESC, array_length(con.conkey, 1), con.conname
"""

_EXTENSION_SCHEMA_SQL = """
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""


def locate_letta_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The schema holding Letta's tables: most marker tables, then on the search_path, then named like the db."""
    row = conn.execute(_CANDIDATE_SCHEMAS_SQL, (list(LETTA_MARKER_TABLES),)).fetchone()
    return None if row is None else str(row[0])


def session_search_path(conn: psycopg.Connection[Any]) -> list[str]:
    """Schemas the session resolves unqualified names in (before verify pins its own path)."""
    return list(conn.execute("SELECT current_schemas(false)").fetchone()[0])  # type: ignore[index]


def row_keys(
    conn: psycopg.Connection[Any], schema: str, columns: dict[str, dict[str, str]]
) -> dict[str, tuple[str, ...]]:
    """Per table, the columns naming a row in findings: ``id`` if present, else the PK or first UNIQUE."""
    keys: dict[str, tuple[str, ...]] = {table: ("id",) for table, cols in columns.items() if "id" in cols}
    for table, key_columns in conn.execute(_ROW_KEYS_SQL, (schema,)):
        keys.setdefault(table, tuple(key_columns))
    return keys


def pin_search_path(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """``SET LOCAL search_path`` to the Letta schema (+ pgvector's schema); returns pgvector's schema."""
    row = conn.execute(_EXTENSION_SCHEMA_SQL).fetchone()
    vector_schema = None if row is None else str(row[0])
    path = [schema] + ([vector_schema] if vector_schema and vector_schema != schema else [])
    conn.execute(
        sql.SQL("SET LOCAL search_path TO {}").format(sql.SQL(", ").join(sql.Identifier(p) for p in path))
    )
    return vector_schema


def build_context(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    encryption_key: str | None = None,
    server_stopped: bool = False,
) -> CheckContext:
    """Inside an open transaction: pin the search path and read the schema's shape."""
    original_path = session_search_path(conn)
    vector_schema = pin_search_path(conn, schema)
    columns = capture_columns(conn, schema)
    revision = None
    if "alembic_version" in columns:
        try:
            with conn.transaction():  # a savepoint: the role may lack the right to read it
                rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            revision = rows[0][0] if len(rows) == 1 else None
        except psycopg.Error:
            revision = None
    ctx = CheckContext(
        conn=conn,
        schema=schema,
        columns=columns,
        row_keys=row_keys(conn, schema, columns),
        revision=revision,
        encryption_key=encryption_key,
        server_stopped=server_stopped,
    )
    ctx.notes["session_search_path"] = original_path
    ctx.notes["vector_schema"] = vector_schema
    return ctx
