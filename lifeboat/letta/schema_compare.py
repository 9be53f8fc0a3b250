"""Comparing a Letta schema with lifeboat's record of its alembic revision.

:func:`compare_shapes` lists every difference between a recorded :class:`SchemaShape` and one
captured from a database — missing, extra and different tables, columns, types, nullability,
defaults, constraints, indexes, sequences and enum types — as plain :class:`Difference` values.
Callers decide what a difference means (``verify`` turns them into findings). Constraints and
indexes are compared by name *and* definition: a later Letta migration drops them by name.

:func:`matching_revisions` answers which recorded revisions a captured schema is exactly (by
tables and columns), to tell whether ``alembic_version`` agrees with the schema present.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from lifeboat.letta import revisions
from lifeboat.letta.schema_shape import SchemaShape, expected_shape

Aspect = Literal["table", "column", "type", "not_null", "default", "constraint", "index", "sequence", "enum"]
Change = Literal["missing", "extra", "different"]


@dataclass(frozen=True)
class Difference:
    aspect: Aspect
    change: Change
    table: str  # "-" for sequences and enum types
    name: str  # the column, constraint, index, sequence or type (the table itself for aspect "table")
    expected: str | None = None
    actual: str | None = None


def compare_shapes(expected: SchemaShape, actual: SchemaShape) -> list[Difference]:
    """Every difference of ``actual`` from ``expected`` (details only when both have them)."""
    found = list(_tables_and_columns(expected, actual))
    if expected.details is not None and actual.details is not None:
        found += _details(expected, actual)
    return found


def _tables_and_columns(expected: SchemaShape, actual: SchemaShape) -> Iterator[Difference]:
    for table in sorted(set(expected.tables) - set(actual.tables)):
        yield Difference("table", "missing", table, table)
    for table in sorted(set(actual.tables) - set(expected.tables)):
        yield Difference("table", "extra", table, table)
    for table in sorted(set(expected.tables) & set(actual.tables)):
        want, have = expected.tables[table], actual.tables[table]
        for column, kind in want.items():
            if column not in have:
                yield Difference("column", "missing", table, column, kind)
            elif have[column] != kind:
                yield Difference("type", "different", table, column, kind, have[column])
        for column in have:
            if column not in want:
                yield Difference("column", "extra", table, column, None, have[column])


def _details(expected: SchemaShape, actual: SchemaShape) -> list[Difference]:
    want, have = expected.details, actual.details
    assert want is not None and have is not None
    common = sorted(set(expected.tables) & set(actual.tables))
    found: list[Difference] = []
    for table in common:
        columns = set(expected.tables[table]) & set(actual.tables[table])
        wanted_nn = set(want.not_null.get(table, ())) & columns
        have_nn = set(have.not_null.get(table, ())) & columns
        for column in sorted(wanted_nn ^ have_nn):
            found.append(
                Difference(
                    "not_null",
                    "different",
                    table,
                    column,
                    "NOT NULL" if column in wanted_nn else "NULL",
                    "NOT NULL" if column in have_nn else "NULL",
                )
            )
        found += _named(
            "default",
            table,
            _only(want.defaults.get(table, {}), columns),
            _only(have.defaults.get(table, {}), columns),
        )
        found += _named("constraint", table, want.constraints.get(table, {}), have.constraints.get(table, {}))
        found += _named("index", table, want.indexes.get(table, {}), have.indexes.get(table, {}))
    found += _named("sequence", "-", want.sequences, have.sequences)
    found += _named(
        "enum",
        "-",
        {name: ", ".join(labels) for name, labels in want.enums.items()},
        {name: ", ".join(labels) for name, labels in have.enums.items()},
    )
    return found


def _only(mapping: dict[str, str], keys: set[str]) -> dict[str, str]:
    return {key: value for key, value in mapping.items() if key in keys}


def _named(aspect: Aspect, table: str, want: dict[str, str], have: dict[str, str]) -> list[Difference]:
    found = []
    for name in sorted(set(want) | set(have)):
        if name not in have:
            found.append(Difference(aspect, "missing", table, name, want[name], None))
        elif name not in want:
            found.append(Difference(aspect, "extra", table, name, None, have[name]))
        elif want[name] != have[name]:
            found.append(Difference(aspect, "different", table, name, want[name], have[name]))
    return found


def recorded_revisions() -> list[str]:
    """Every release head lifeboat holds a schema record for (newest first)."""
    heads = []
    for release in reversed(revisions.RELEASES):
        if release.head not in heads and expected_shape(release.head) is not None:
            heads.append(release.head)
    return heads


def matching_revisions(actual: SchemaShape) -> list[str]:
    """Recorded revisions whose tables and columns (names and types) ``actual`` has exactly."""
    matches = []
    for head in recorded_revisions():
        recorded = expected_shape(head)
        if recorded is not None and not list(_tables_and_columns(recorded, actual)):
            matches.append(head)
    return matches
