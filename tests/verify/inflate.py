"""Grow a (consistent) Letta database to a target size, for verify's speed budget (2 GB < 60 s).

Copies the bulk tables of the real deployment — archival passages (vector(4096): ~16 KB a row)
with their passage_tags, messages (as out-of-context history) and provider traces — under fresh
strict ids, doubling until ``pg_database_size`` reaches the target. The copies keep every
invariant verify checks, so the grown database must still verify clean.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

_COLUMNS_SQL = """
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    return [row[0] for row in conn.execute(_COLUMNS_SQL, (table,))]


def _copy_rows(
    conn: psycopg.Connection, table: str, prefix: str, limit: int, *, skip: tuple[str, ...] = ()
) -> None:
    """Insert up to ``limit`` copies of existing rows with new ``<prefix>-<uuid4>`` ids."""
    columns = [c for c in _columns(conn, table) if c not in skip]
    others = [c for c in columns if c != "id"]
    conn.execute(
        sql.SQL(
            "INSERT INTO {table} (id, {cols}) SELECT {prefix} || gen_random_uuid(), {cols} FROM {table} "
            "ORDER BY random() LIMIT {limit}"
        ).format(
            table=sql.Identifier(table),
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in others),
            prefix=sql.Literal(prefix + "-"),
            limit=sql.Literal(limit),
        )
    )


def _copy_passages(conn: psycopg.Connection, limit: int) -> None:
    """Copy archival passages and give each copy the passage_tags its tags JSON implies."""
    columns = [c for c in _columns(conn, "archival_passages") if c != "id"]
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    conn.execute(
        sql.SQL(
            """
            WITH copied AS (
              INSERT INTO archival_passages (id, {cols})
              SELECT 'passage-' || gen_random_uuid(), {cols} FROM archival_passages ORDER BY random() LIMIT {limit}
              RETURNING id, archive_id, organization_id, tags
            )
            INSERT INTO passage_tags (id, tag, passage_id, archive_id, organization_id)
            SELECT 'passage-tag-' || gen_random_uuid(), t.value, c.id, c.archive_id, c.organization_id
            FROM copied c, json_array_elements_text(c.tags) t
            WHERE json_typeof(c.tags) = 'array'
            """
        ).format(cols=cols, limit=sql.Literal(limit))
    )


def database_bytes(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]


def inflate(dsn: str, target_bytes: int, *, max_rounds: int = 30) -> int:
    """Grow the database at ``dsn`` (a superuser or the owner) to at least ``target_bytes``; returns its size."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(max_rounds):
            size = database_bytes(conn)
            if size >= target_bytes:
                break
            passages = int(conn.execute("SELECT count(*) FROM archival_passages").fetchone()[0])  # type: ignore[index]
            messages = int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])  # type: ignore[index]
            traces = int(conn.execute("SELECT count(*) FROM provider_traces").fetchone()[0])  # type: ignore[index]
            missing = target_bytes - size
            with conn.transaction():
                # passages carry ~16 KB of vector each: they make most of the size, as in production
                _copy_passages(conn, min(max(passages, 1), max(1, missing // 20_000)))
                _copy_rows(conn, "messages", "message", min(max(messages, 1), 200_000), skip=("sequence_id",))
                _copy_rows(conn, "provider_traces", "provider_trace", min(max(traces, 1), 20_000))
        conn.execute("ANALYZE")
        return database_bytes(conn)
