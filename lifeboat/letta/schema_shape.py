"""The structural shape of a Letta schema and how to capture it.

A shape holds tables and column types, foreign keys and sequence names and, since record
format 2, :class:`ShapeDetails`: nullability, defaults, every constraint and index by name,
sequence definitions and enum labels, with the Letta (and pgvector) schema names taken out so a
shape does not depend on what the schema is called.

``lifeboat verify`` compares a database with the shape recorded for its alembic revision
(:func:`lifeboat.letta.schema_records.schema_record`; one ``schema_<revision>.py`` per recorded
release head). A record is generated from a real migrated database::

    python -m lifeboat.letta.schema_shape postgresql://letta:letta@host:port/letta > \
        lifeboat/letta/schema_1c28e167b74f.py

and a test compares it with the test bed's real deployment, so it cannot silently drift.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import psycopg

from lifeboat.pg import catalog
from lifeboat.pg.capture import capture_schema
from lifeboat.pg.catalog import ForeignKey
from lifeboat.pg.models import DatabaseSchema, SequenceDef

__all__ = ["ForeignKey", "SchemaShape", "capture_shape", "expected_shape", "render_module"]


@dataclass(frozen=True)
class ShapeDetails:
    """What record format 2 adds; every SQL text has the Letta/pgvector schema qualifiers removed."""

    not_null: dict[str, tuple[str, ...]]  # table -> NOT NULL columns
    defaults: dict[str, dict[str, str]]  # table -> column -> default expression
    constraints: dict[str, dict[str, str]]  # table -> constraint name -> "<kind> <definition>" (p u c f x)
    indexes: dict[str, dict[str, str]]  # table -> index name -> CREATE INDEX (not backing a constraint)
    sequences: dict[str, str]  # sequence -> "<type> increment .. min .. max .. start .. cache .. [cycle]"
    enums: dict[str, tuple[str, ...]]  # enum type -> labels in order


@dataclass(frozen=True)
class SchemaShape:
    revision: str | None
    tables: dict[str, dict[str, str]]  # table -> column -> type as format_type() prints it
    foreign_keys: tuple[ForeignKey, ...]
    sequences: tuple[str, ...]
    details: ShapeDetails | None = None  # None: a format-1 record; the detailed comparison is skipped


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
    sequences = catalog.sequence_names(conn, schema)
    details = shape_details(capture_schema(conn, allow_unsupported=True), schema)
    return SchemaShape(revision, tables, catalog.foreign_keys(conn, schema), sequences, details)


def shape_details(database: DatabaseSchema, schema: str) -> ShapeDetails:
    """Project a catalog capture onto one schema, with its (and pgvector's) qualifiers removed."""
    strip = _unqualifier([schema, *(e.schema_ for e in database.extensions if e.name == "vector")])
    tables = [t for t in database.tables if t.schema_ == schema]
    return ShapeDetails(
        not_null={t.name: tuple(c.name for c in t.columns if c.not_null) for t in tables},
        defaults={t.name: {c.name: strip(c.default) for c in t.columns if c.default} for t in tables},
        constraints={
            t.name: {c.name: f"{c.kind} {strip(c.definition)}" for c in t.constraints} for t in tables
        },
        indexes={t.name: {i.name: strip(i.definition) for i in t.indexes} for t in tables},
        sequences={s.name: _sequence_text(s, strip) for s in database.sequences if s.schema_ == schema},
        enums={e.name: tuple(e.labels) for e in database.enums if e.schema_ == schema},
    )


def _sequence_text(sequence: SequenceDef, strip: Any) -> str:
    text = (
        f"{sequence.data_type} increment {sequence.increment} min {sequence.min_value} "
        f"max {sequence.max_value} start {sequence.start} cache {sequence.cache}"
    )
    if sequence.cycle:
        text += " cycle"
    if sequence.owned_by is not None:
        text += f" owned by {sequence.owned_by.table.name}.{sequence.owned_by.column}"
    return str(strip(text))


def _unqualifier(schemas: list[str]) -> Any:
    """A function removing ``schema.`` qualifiers (plain or quoted) of the given schemas from SQL text."""
    names = sorted({name for schema in schemas for name in (schema, f'"{schema}"')}, key=len, reverse=True)
    pattern = re.compile(r'(?<![\w."])(?:' + "|".join(re.escape(n) for n in names) + r")\.")

    def strip(text: str | None) -> str:
        return pattern.sub("", text or "")

    return strip


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
        "from lifeboat.letta.schema_shape import ForeignKey, SchemaShape"
        + (", ShapeDetails" if shape.details is not None else ""),
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
    details = shape.details
    if details is None:
        lines.append(f"SHAPE = SchemaShape({_q(shape.revision)}, TABLES, FOREIGN_KEYS, SEQUENCES)")
        return "\n".join(lines) + "\n"
    sections: list[tuple[str, str, dict[str, Any]]] = [
        ("NOT_NULL", "dict[str, tuple[str, ...]]", details.not_null),
        ("DEFAULTS", "dict[str, dict[str, str]]", details.defaults),
        ("CONSTRAINTS", "dict[str, dict[str, str]]", details.constraints),
        ("INDEXES", "dict[str, dict[str, str]]", details.indexes),
        ("SEQUENCE_DEFINITIONS", "dict[str, str]", details.sequences),
        ("ENUMS", "dict[str, tuple[str, ...]]", details.enums),
    ]
    for name, annotation, mapping in sections:
        lines += [f"{name}: {annotation} = {{"]
        lines += [f"    {_q(key)}: {_literal(mapping[key])}," for key in sorted(mapping)]
        lines += ["}", ""]
    lines += [
        "DETAILS = ShapeDetails(NOT_NULL, DEFAULTS, CONSTRAINTS, INDEXES, SEQUENCE_DEFINITIONS, ENUMS)",
        "",
        f"SHAPE = SchemaShape({_q(shape.revision)}, TABLES, FOREIGN_KEYS, SEQUENCES, DETAILS)",
    ]
    return "\n".join(lines) + "\n"


def _literal(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in sorted(value.items())) + "}"
    return _q(value)


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
