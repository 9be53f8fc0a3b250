"""Post-data DDL: keys and indexes, then foreign keys and NOT VALID checks, then sequence ownership and values.

PRIMARY KEY / UNIQUE are built as an index first (in parallel with the table's other indexes)
and then attached; each statement runs ``after`` its table's data load (:func:`load_key`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from psycopg import sql

from lifeboat.pg.ddl_ownership import comment_statements, constraint_comment_statements
from lifeboat.pg.ddl_statement import Query, Statement
from lifeboat.pg.fragments import check_constraint, check_index
from lifeboat.pg.models import ConstraintDef, DatabaseSchema, IndexDef, QualifiedName, SequenceDef, TableDef


def _then(comments: list[Statement]) -> tuple[Query, ...]:
    """A comment runs after its object's creation, on the same connection (one unit for the scheduler)."""
    return tuple(query for comment in comments for query in comment.queries())


def inline_check(constraint: ConstraintDef) -> bool:
    """A valid CHECK is created with its table (pre-data, like pg_dump); the others come here."""
    return constraint.kind == "c" and constraint.validated


def load_key(table: TableDef | QualifiedName) -> str:
    """The key of a table's data load; post-data statements of the table run ``after`` it."""
    name = table.qualified if isinstance(table, TableDef) else table
    return f"load:{name}"


def _deferral(constraint: ConstraintDef) -> sql.Composable:
    if not constraint.deferrable:
        return sql.SQL("")
    return sql.SQL(" DEFERRABLE INITIALLY DEFERRED" if constraint.deferred else " DEFERRABLE")


def _key_statements(table: TableDef, constraint: ConstraintDef) -> list[Statement]:
    """PRIMARY KEY / UNIQUE as two steps: build the index (parallel with the table's other index
    builds, which a constraint's ACCESS EXCLUSIVE lock would forbid), then attach it."""
    name = str(table.qualified)
    if constraint.index_definition is None:  # EXCLUDE (or a capture without index definitions)
        return [_add_constraint(table, constraint, after=frozenset({load_key(table)}))]
    index_key = f"index:{table.schema_}.{constraint.name}"
    build = Statement(
        check_index(
            constraint.index_definition,
            f"constraint {table.qualified}.{constraint.name}",
            name=constraint.name,
            table=table.qualified,
            unique=True,
        ),
        shared_locks=frozenset({name}),
        key=index_key,
        after=frozenset({load_key(table)}),
    )
    kind = "PRIMARY KEY" if constraint.kind == "p" else "UNIQUE"
    attach = sql.SQL("ALTER TABLE ONLY {} ADD CONSTRAINT {} {} USING INDEX {}{}").format(
        table.qualified.identifier(),
        sql.Identifier(constraint.name),
        sql.SQL(kind),
        sql.Identifier(constraint.name),
        _deferral(constraint),
    )
    return [
        build,
        Statement(
            attach,
            then=_then(constraint_comment_statements(table, constraint)),
            exclusive_locks=frozenset({name}),
            key=f"constraint:{name}.{constraint.name}",
            after=frozenset({index_key}),
        ),
    ]


def _add_constraint(table: TableDef, constraint: ConstraintDef, *, after: frozenset[str]) -> Statement:
    where = f"constraint {table.qualified}.{constraint.name}"
    statement = sql.SQL("ALTER TABLE ONLY {} ADD CONSTRAINT {} {}").format(
        table.qualified.identifier(),
        sql.Identifier(constraint.name),
        check_constraint(constraint.definition, constraint.kind, where),
    )
    locks = {str(table.qualified)}
    if constraint.references is not None:
        locks.add(str(constraint.references))
    return Statement(
        statement,
        then=_then(constraint_comment_statements(table, constraint)),
        exclusive_locks=frozenset(locks),
        key=f"constraint:{table.qualified}.{constraint.name}",
        after=after,
    )


def _index_statement(table: TableDef, index: IndexDef) -> Statement:
    index_name = QualifiedName(schema=table.schema_, name=index.name).identifier()
    where = f"index {table.schema_}.{index.name}"
    statement = check_index(index.definition, where, name=index.name, table=table.qualified)
    return Statement(
        statement,
        then=_then(comment_statements("INDEX", index_name, index.comment)),
        shared_locks=frozenset({str(table.qualified)}),
        key=f"index:{table.schema_}.{index.name}",
        after=frozenset({load_key(table)}),
    )


def post_data_statements(schema: DatabaseSchema) -> list[Statement]:
    """Indexes and keys, then foreign keys and NOT VALID checks, then sequence ownership.

    Ordering is by ``after`` (a statement runs once the statements it names are done; a table's
    statements wait for ``load_key(table)`` when the caller schedules loads in the same run), so
    index builds of different tables, and of the same table, overlap on several connections.
    """
    keys_and_indexes: dict[str, list[Statement]] = {}
    for table in schema.tables_biggest_first():
        statements: list[Statement] = []
        for constraint in table.constraints:
            if constraint.kind in ("p", "u", "x"):
                statements += _key_statements(table, constraint)
        statements += [_index_statement(table, index) for index in table.indexes]
        keys_and_indexes[str(table.qualified)] = statements
    # Builds first (biggest table first), attaches after: a scheduler takes the first ready one.
    ordered = [st for group in keys_and_indexes.values() for st in group if st.shared_locks]
    ordered += [st for group in keys_and_indexes.values() for st in group if not st.shared_locks]
    done_with = {name: frozenset(st.key for st in group) for name, group in keys_and_indexes.items()}
    for table in schema.tables_biggest_first():
        for constraint in table.constraints:
            if constraint.kind == "f" or (constraint.kind == "c" and not inline_check(constraint)):
                after = done_with[str(table.qualified)] | {load_key(table)}
                if constraint.references is not None:
                    after |= done_with.get(str(constraint.references), frozenset())
                    after |= {load_key(constraint.references)}
                ordered.append(_add_constraint(table, constraint, after=after))
    everything = frozenset(st.key for st in ordered)
    ordered += [replace(st, after=everything) for st in sequence_ownership_statements(schema.sequences)]
    return ordered


def sequence_ownership_statements(sequences: Iterable[SequenceDef]) -> list[Statement]:
    statements = []
    for sequence in sequences:
        owner = sequence.owned_by
        if owner is None or owner.identity:
            continue
        statement = sql.SQL("ALTER SEQUENCE {} OWNED BY {}.{}").format(
            sequence.qualified.identifier(), owner.table.identifier(), sql.Identifier(owner.column)
        )
        statements.append(Statement(statement))
    return statements


def sequence_value_statements(sequences: Iterable[SequenceDef]) -> list[Statement]:
    return [
        Statement(
            sql.SQL("SELECT pg_catalog.setval({}, {}, {})").format(
                sql.Literal(str(sequence.qualified.identifier().as_string())),
                sql.Literal(sequence.last_value),
                sql.Literal(sequence.is_called),
            )
        )
        for sequence in sequences
    ]
