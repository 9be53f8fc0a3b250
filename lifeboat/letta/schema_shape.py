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

from lifeboat.pg import catalog
from lifeboat.pg.catalog import ForeignKey

__all__ = ["ForeignKey", "SchemaShape", "capture_shape", "expected_shape", "render_module"]


@dataclass(frozen=True)
class SchemaShape:
    revision: str | None
    tables: dict[str, dict[str, str]]  # table -> column -> type as format_type() prints it
    foreign_keys: tuple[ForeignKey, ...]
    sequences: tuple[str, ...]


def capture_shape(conn: psycopg.Connection[Any], schema: str) -> SchemaShape:
    """Read the shape of ``schema`` from the catalogs (plus its alembic revision, if any)."""
    tables = catalog.column_types(conn, schema)
    revision = None
    if "alembic_version" in tables:
        from psycopg import sql

        row = conn.execute(
            sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(schema))
        ).fetchone()
        revision = row[0] if row else None
    return SchemaShape(
        revision, tables, catalog.foreign_keys(conn, schema), catalog.sequence_names(conn, schema)
    )


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
