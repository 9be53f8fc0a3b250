"""Positioning a verify session on the Letta schema and learning its shape.

Verify does not trust the session's search_path: it pins it to the schema
:func:`lifeboat.letta.locate.find_letta_schema` found, for its own transaction, and reports
separately (check ``schema``) whether Letta's role would find its tables.
"""

from __future__ import annotations

from typing import Any

import psycopg

from lifeboat.letta.checks.base import CheckContext
from lifeboat.letta.locate import session_search_path, use_letta_schema
from lifeboat.pg import catalog


def row_keys(
    conn: psycopg.Connection[Any], schema: str, columns: dict[str, dict[str, str]]
) -> dict[str, tuple[str, ...]]:
    """Per table, the columns naming a row in findings: ``id`` if present, else the PK or first UNIQUE."""
    keys: dict[str, tuple[str, ...]] = {table: ("id",) for table, cols in columns.items() if "id" in cols}
    for table, unique in catalog.unique_keys(conn, schema).items():
        keys.setdefault(table, unique[0])
    return keys


def build_context(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    encryption_key: str | None = None,
    server_stopped: bool = False,
) -> CheckContext:
    """Inside an open transaction: pin the search path and read the schema's shape."""
    original_path = session_search_path(conn)
    vector_schema = use_letta_schema(conn, schema)
    columns = catalog.column_types(conn, schema)
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
