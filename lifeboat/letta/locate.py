"""Where Letta's tables live in a database: the one place every command asks.

Letta's ``init.sql`` puts every table in a schema named after the database and points the
database-level ``search_path`` at it; Letta's own SQL is unqualified. Neither half can be trusted
by a tool: a copy made with ``CREATE DATABASE … TEMPLATE`` (or a ``pg_dump`` without
``--create``) loses the ``ALTER DATABASE … SET search_path``, a role may carry its own path, and a
database may be named differently from its schema. So lifeboat never relies on the session's
search_path: :func:`find_letta_schema` looks in the catalog for the schema holding Letta's
tables, and :func:`use_letta_schema` pins the path to it for the caller's transaction, so the
unqualified SQL of the Letta layer means the same thing everywhere (backup, export, agents,
agent restore, verify, reconcile, doctor).
"""

from __future__ import annotations

from typing import Any

import psycopg

from lifeboat.errors import UsageError
from lifeboat.pg import catalog

# Tables every Letta release since 0.6 has; the schema holding most of them is Letta's.
LETTA_MARKER_TABLES = ("agents", "messages", "block")


def find_letta_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The schema holding Letta's tables (None when there is none).

    When several schemas hold some of them: the one with the most, then one on the session's
    search_path, then the one named like the database.
    """
    candidates = catalog.schemas_with_tables(conn, LETTA_MARKER_TABLES)
    return candidates[0] if candidates else None


def use_letta_schema(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """Inside an open transaction: ``SET LOCAL search_path`` to ``schema`` and pgvector's schema
    (so ``vector`` columns and operators resolve). Returns pgvector's schema, if installed."""
    vector_schema = catalog.extension_schema(conn, "vector")
    path = [schema] + ([vector_schema] if vector_schema and vector_schema != schema else [])
    catalog.set_local_search_path(conn, path)
    return vector_schema


def enter_letta_schema(conn: psycopg.Connection[Any]) -> str:
    """Inside an open transaction: find Letta's schema and pin the search_path to it.

    Raises :class:`~lifeboat.errors.UsageError` when the database holds no Letta tables (the
    operator pointed the command at the wrong database).
    """
    schema = find_letta_schema(conn)
    if schema is None:
        tables = ", ".join(LETTA_MARKER_TABLES)
        raise UsageError(
            f"no schema of this database holds Letta's tables ({tables}): is it the Letta database?"
        )
    use_letta_schema(conn, schema)
    return schema


def session_search_path(conn: psycopg.Connection[Any]) -> list[str]:
    """Schemas the session resolves unqualified names in (before :func:`use_letta_schema`)."""
    row = conn.execute("SELECT pg_catalog.current_schemas(false)").fetchone()
    return list(row[0]) if row else []
