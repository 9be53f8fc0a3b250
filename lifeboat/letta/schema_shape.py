"""The structural shape of a Letta schema (tables, column types, foreign keys) and how to capture it.

``lifeboat verify`` compares a database with the shape recorded for its alembic revision
(:func:`lifeboat.letta.schema_records.schema_record`; one ``schema_<revision>.py`` per recorded
release head). A record is generated from a real migrated database::

    python -m lifeboat.letta.schema_shape postgresql://letta:letta@host:port/letta > \
        lifeboat/letta/schema_1c28e167b74f.py

and a test compares it with the test bed's real deployment, so it cannot silently drift.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str  # 'a' no action, 'r' restrict, 'c' cascade, 'n' set null, 'd' set default
    deferrable: bool = False


@dataclass(frozen=True)
class SchemaShape:
    revision: str | None
    tables: dict[str, dict[str, str]]  # table -> column -> type as format_type() prints it
    foreign_keys: tuple[ForeignKey, ...]
    sequences: tuple[str, ...]


COLUMNS_SQL = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""

FOREIGN_KEYS_SQL = """
SELECT con.conname, child.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       parent.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.n),
       con.confdeltype::text, con.condeferrable
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class child ON child.oid = con.conrelid
JOIN pg_catalog.pg_class parent ON parent.oid = con.confrelid
WHERE con.contype = 'f' AND child.relnamespace = %s::regnamespace
ORDER BY child.relname, con.conname
"""

SEQUENCES_SQL = """
SELECT c.relname FROM pg_catalog.pg_class c
WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'S' ORDER BY c.relname
"""


def capture_columns(conn: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    for table, column, type_name in conn.execute(COLUMNS_SQL, (schema,)):
        tables.setdefault(table, {})[column] = type_name
    return tables


def capture_foreign_keys(conn: psycopg.Connection[Any], schema: str) -> tuple[ForeignKey, ...]:
    return tuple(
        ForeignKey(name, table, tuple(cols), ref_table, tuple(ref_cols), on_delete, bool(deferrable))
        for name, table, cols, ref_table, ref_cols, on_delete, deferrable in conn.execute(
            FOREIGN_KEYS_SQL, (schema,)
        )
    )


def capture_shape(conn: psycopg.Connection[Any], schema: str) -> SchemaShape:
    """Read the shape of ``schema`` from the catalogs (plus its alembic revision, if any)."""
    tables = capture_columns(conn, schema)
    revision = None
    if "alembic_version" in tables:
        from psycopg import sql

        row = conn.execute(
            sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(schema))
        ).fetchone()
        revision = row[0] if row else None
    sequences = tuple(row[0] for row in conn.execute(SEQUENCES_SQL, (schema,)))
    return SchemaShape(revision, tables, capture_foreign_keys(conn, schema), sequences)


def expected_shape(revision: str | None) -> SchemaShape | None:
    """The recorded shape of a Letta revision, when lifeboat has one (see :mod:`.schema_records`)."""
    from lifeboat.letta.schema_records import schema_record

    return schema_record(revision)


def _q(value: object) -> str:
    """A Python literal with double-quoted strings (what the formatter wants); tuples of strings too."""
    if isinstance(value, tuple):
        inner = ", ".join(_q(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return json.dumps(value) if isinstance(value, str) else repr(value)


_DEFAULT_ORIGIN = "Captured from a real deployment by ``python -m lifeboat.letta.schema_shape DSN``"


def render_module(shape: SchemaShape, origin: str = _DEFAULT_ORIGIN) -> str:
    """Python source of a module holding ``shape`` as ``SHAPE`` (deterministic, diff-friendly)."""
    lines = [
        f'"""Shape of a Letta database migrated to alembic revision {shape.revision} (generated).',
        "",
        f"{origin}; do not edit.",
        '"""',
        "",
        "from lifeboat.letta.schema_shape import ForeignKey, SchemaShape",
        "",
        "TABLES: dict[str, dict[str, str]] = {",
    ]
    for table in sorted(shape.tables):
        lines.append(f"    {_q(table)}: {{")
        lines.extend(f"        {_q(column)}: {_q(kind)}," for column, kind in shape.tables[table].items())
        lines.append("    },")
    lines += ["}", "", "FOREIGN_KEYS: tuple[ForeignKey, ...] = ("]
    for fk in shape.foreign_keys:
        lines += [
            "    ForeignKey(",
            f"        {_q(fk.name)},",
            f"        {_q(fk.table)},",
            f"        {_q(fk.columns)},",
            f"        {_q(fk.ref_table)},",
            f"        {_q(fk.ref_columns)},",
            f"        {_q(fk.on_delete)},",
            f"        {fk.deferrable!r},",
            "    ),",
        ]
    lines += [")", "", f"SEQUENCES: tuple[str, ...] = {_q(shape.sequences)}", ""]
    lines.append(f"SHAPE = SchemaShape({_q(shape.revision)}, TABLES, FOREIGN_KEYS, SEQUENCES)")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: python -m lifeboat.letta.schema_shape DSN [SCHEMA]\n")
        return 2
    schema = argv[2] if len(argv) == 3 else "letta"
    with psycopg.connect(argv[1]) as conn:
        sys.stdout.write(render_module(capture_shape(conn, schema)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
