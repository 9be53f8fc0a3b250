"""Compare a snapshot's schema document with lifeboat's record of the Letta revision it claims.

A restore recreates the schema from the snapshot's schema document. Every fragment in it is
already checked for shape (:mod:`lifeboat.pg.fragments`); this module checks content: when the
snapshot says it is Letta revision R and lifeboat has a record of R (``schema_<R>.py``, found
by :func:`lifeboat.letta.schema_records.schema_record`, so every release's record plugs in),
the document must describe exactly that schema — the same tables, columns and column types,
foreign keys, sequences and, for records with details (format 2), the same nullability,
defaults, constraint and index definitions, sequence definitions and enum labels; nothing
outside Letta's schema and no extension besides Letta's. Any difference is reported; the
restore refuses unless the operator says ``--trust-schema``.
"""

from __future__ import annotations

from lifeboat.letta.locate import LETTA_MARKER_TABLES
from lifeboat.letta.schema_compare import Difference, compare_shapes
from lifeboat.letta.schema_records import schema_record
from lifeboat.letta.schema_shape import ForeignKey, SchemaShape, shape_details
from lifeboat.pg.fragments import UnsafeFragment, parse_constraint
from lifeboat.pg.models import DatabaseSchema, TableDef

LETTA_EXTENSIONS = frozenset({"plpgsql", "vector"})
_SHOWN = 8  # differences listed in a message


def record_for(revision: str | None) -> SchemaShape | None:
    """Lifeboat's record of ``revision``, or ``None`` when it has none (unknown or unrecorded)."""
    return schema_record(revision)


def letta_schema_of(schema: DatabaseSchema) -> str | None:
    """The schema of the document holding most of Letta's marker tables (None when none does)."""
    counts: dict[str, int] = {}
    for table in schema.tables:
        if table.name in LETTA_MARKER_TABLES:
            counts[table.schema_] = counts.get(table.schema_, 0) + 1
    return max(sorted(counts), key=lambda name: counts[name]) if counts else None


def schema_differences(schema: DatabaseSchema, record: SchemaShape) -> list[str]:
    """What the schema document has that the record does not, and the reverse (empty: identical)."""
    letta = letta_schema_of(schema)
    if letta is None:
        return ["the schema document has no Letta schema"]
    prefixes = {f"{letta}."} | {f"{e.schema_}." for e in schema.extensions if e.name == "vector"}
    differences = [
        f"table {t.qualified} is not in Letta's schema" for t in schema.tables if t.schema_ != letta
    ]
    tables = {t.name: t for t in schema.tables if t.schema_ == letta}
    actual = SchemaShape(
        record.revision,
        {name: {c.name: _normalized(c.type, prefixes) for c in t.columns} for name, t in tables.items()},
        (),
        (),
        shape_details(schema, letta) if record.details is not None else None,
    )
    differences += [_describe(difference) for difference in compare_shapes(record, actual)]
    differences += _foreign_key_differences(list(tables.values()), letta, record.foreign_keys)
    sequences = {s.name for s in schema.sequences if s.schema_ == letta}
    others = [f"{s.schema_}.{s.name}" for s in schema.sequences if s.schema_ != letta]
    differences += [f"sequence {name} is not in Letta's schema" for name in others]
    differences += [f"sequence {name} is missing" for name in sorted(set(record.sequences) - sequences)]
    differences += [
        f"sequence {name} is not in the record" for name in sorted(sequences - set(record.sequences))
    ]
    extensions = {e.name for e in schema.extensions}
    differences += [f"extension {name} is not Letta's" for name in sorted(extensions - LETTA_EXTENSIONS)]
    return differences


def _normalized(type_name: str, prefixes: set[str]) -> str:
    for prefix in prefixes:
        if type_name.startswith(prefix):
            return type_name[len(prefix) :]
    return type_name


def _describe(difference: Difference) -> str:
    where = difference.name if difference.table == "-" else f"{difference.table}.{difference.name}"
    if difference.aspect == "table":
        where = difference.name
    if difference.change == "missing":
        return f"{difference.aspect} {where} is missing"
    if difference.change == "extra":
        return f"{difference.aspect} {where} is not in the record"
    aspect = "column" if difference.aspect == "type" else difference.aspect
    return f"{aspect} {where} is {difference.actual!r}, the record says {difference.expected!r}"


def _foreign_key_differences(
    tables: list[TableDef], letta: str, recorded: tuple[ForeignKey, ...]
) -> list[str]:
    found: set[ForeignKey] = set()
    differences: list[str] = []
    for table in tables:
        for constraint in table.constraints:
            if constraint.kind != "f":
                continue
            where = f"constraint {table.qualified}.{constraint.name}"
            try:
                parsed = parse_constraint(constraint.definition, "f", where)
            except UnsafeFragment as exc:
                differences.append(str(exc))
                continue
            target = parsed.pktable
            if target is None or (target.schemaname or letta) != letta:
                differences.append(
                    f"foreign key {table.name}.{constraint.name} points outside Letta's schema"
                )
                continue
            found.add(
                ForeignKey(
                    constraint.name,
                    table.name,
                    tuple(str(n.sval) for n in parsed.fk_attrs or ()),
                    str(target.relname),
                    tuple(str(n.sval) for n in parsed.pk_attrs or ()),
                    str(parsed.fk_del_action),
                    bool(parsed.deferrable),
                )
            )
    expected = set(recorded)
    differences += [
        f"foreign key {fk.table}.{fk.name} is missing or differs" for fk in sorted(expected - found, key=str)
    ]
    differences += [
        f"foreign key {fk.table}.{fk.name} is not in the record" for fk in sorted(found - expected, key=str)
    ]
    return differences


def summarize(differences: list[str]) -> str:
    shown = "; ".join(differences[:_SHOWN])
    more = f"; and {len(differences) - _SHOWN} more" if len(differences) > _SHOWN else ""
    return f"{len(differences)} difference(s): {shown}{more}"
