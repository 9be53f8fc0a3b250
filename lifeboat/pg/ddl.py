"""Render a captured :class:`DatabaseSchema` as DDL statements, in restore sections.

* **pre-data**: schemas, extensions, enum types, sequences, tables (columns, defaults,
  NOT NULL, identity/generated, valid CHECK constraints), comments, owners, privileges;
* **data**: loaded by the caller with COPY;
* **post-data**: PRIMARY KEY / UNIQUE / EXCLUDE constraints and indexes, then foreign keys and
  NOT VALID checks, then sequence ownership and values.

Valid CHECK constraints go with the table (like pg_dump): checking them while COPY writes the
rows is cheaper than a second scan afterwards. Each statement names the tables it locks (so
post-data can run on several connections without two of them deadlocking) and the roles it
needs (owners and grantees that may not exist on the target).

This module renders pre-data and checks a whole schema (:func:`check_schema`); post-data is in
:mod:`lifeboat.pg.ddl_post`, database settings in :mod:`lifeboat.pg.ddl_settings`, the
statement type in :mod:`lifeboat.pg.ddl_statement`. Callers import all of them from here.
"""

from __future__ import annotations

import re

from psycopg import sql

from lifeboat.pg.ddl_ownership import (
    comment_statements,
    constraint_comment_statements,
    owner_statement,
    privilege_statements,
)
from lifeboat.pg.ddl_post import (
    inline_check,
    load_key,
    post_data_statements,
    sequence_ownership_statements,
    sequence_value_statements,
)
from lifeboat.pg.ddl_settings import database_setting_statements, setting_statement, split_list_setting
from lifeboat.pg.ddl_statement import Query, Statement, execute_one, execute_statement_queries
from lifeboat.pg.fragments import (
    check_collation,
    check_constraint,
    check_expression,
    check_sequence_type,
    check_type,
)
from lifeboat.pg.models import ColumnDef, DatabaseSchema, EnumDef, SequenceDef, TableDef

__all__ = [
    "Query",
    "Statement",
    "check_schema",
    "database_setting_statements",
    "execute_one",
    "execute_statement_queries",
    "load_key",
    "post_data_statements",
    "pre_data_statements",
    "schema_statements",
    "sequence_ownership_statements",
    "sequence_value_statements",
    "setting_statement",
    "split_list_setting",
]

_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def enum_statements(enum: EnumDef) -> list[Statement]:
    name = enum.qualified.identifier()
    labels = sql.SQL(", ").join(sql.Literal(label) for label in enum.labels)
    create = Statement(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(name, labels))
    return [
        create,
        *comment_statements("TYPE", name, enum.comment),
        owner_statement("TYPE", name, enum.owner),
    ]


def sequence_options(sequence: SequenceDef, *, with_type: bool = True) -> sql.Composable:
    where = f"sequence {sequence.qualified}"
    parts: list[sql.Composable] = (
        [sql.SQL("AS {}").format(check_sequence_type(sequence.data_type, where))] if with_type else []
    )
    parts += [
        sql.SQL("START WITH {}").format(sql.Literal(sequence.start)),
        sql.SQL("INCREMENT BY {}").format(sql.Literal(sequence.increment)),
        sql.SQL("MINVALUE {}").format(sql.Literal(sequence.min_value)),
        sql.SQL("MAXVALUE {}").format(sql.Literal(sequence.max_value)),
        sql.SQL("CACHE {}").format(sql.Literal(sequence.cache)),
        sql.SQL("CYCLE" if sequence.cycle else "NO CYCLE"),
    ]
    return sql.SQL(" ").join(parts)


def _is_identity_sequence(sequence: SequenceDef) -> bool:
    return sequence.owned_by is not None and sequence.owned_by.identity


def sequence_statements(sequence: SequenceDef) -> list[Statement]:
    """CREATE SEQUENCE (identity sequences are created by their column instead)."""
    name = sequence.qualified.identifier()
    statements: list[Statement] = []
    if not _is_identity_sequence(sequence):
        unlogged = sql.SQL("UNLOGGED ") if sequence.unlogged else sql.SQL("")
        create = sql.SQL("CREATE {}SEQUENCE {} {}").format(unlogged, name, sequence_options(sequence))
        statements.append(Statement(create))
    statements += comment_statements("SEQUENCE", name, sequence.comment)
    if not _is_identity_sequence(sequence):
        statements.append(owner_statement("SEQUENCE", name, sequence.owner))
    statements += privilege_statements("SEQUENCE", name, sequence.owner, sequence.grants)
    return statements


def _identity_sequence(schema: DatabaseSchema, table: TableDef, column: ColumnDef) -> SequenceDef | None:
    for sequence in schema.sequences:
        owner = sequence.owned_by
        if owner and owner.identity and owner.table == table.qualified and owner.column == column.name:
            return sequence
    return None


def column_definition(schema: DatabaseSchema, table: TableDef, column: ColumnDef) -> sql.Composable:
    where = f"column {table.qualified}.{column.name}"
    parts: list[sql.Composable] = [sql.Identifier(column.name), check_type(column.type, where)]
    if column.collation:
        parts.append(sql.SQL("COLLATE {}").format(check_collation(column.collation, where)))
    if column.generated:
        kind = "STORED" if column.generated == "s" else "VIRTUAL"
        expression = check_expression(column.default or "", where, "generation expression")
        parts.append(sql.SQL("GENERATED ALWAYS AS ({}) {}").format(expression, sql.SQL(kind)))
    elif column.identity:
        mode = "ALWAYS" if column.identity == "a" else "BY DEFAULT"
        identity = sql.SQL("GENERATED {} AS IDENTITY").format(sql.SQL(mode))
        sequence = _identity_sequence(schema, table, column)
        if sequence is not None:
            identity = sql.SQL("{} (SEQUENCE NAME {} {})").format(
                identity, sequence.qualified.identifier(), sequence_options(sequence, with_type=False)
            )
        parts.append(identity)
    elif column.default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(check_expression(column.default, where)))
    if column.not_null and column.not_null_name:
        # Accepted (and the name ignored) by servers older than 18.
        parts.append(sql.SQL("CONSTRAINT {} NOT NULL").format(sql.Identifier(column.not_null_name)))
    elif column.not_null:
        parts.append(sql.SQL("NOT NULL"))
    return sql.SQL(" ").join(parts)


def _table_options(table: TableDef) -> sql.Composable:
    if not table.options:
        return sql.SQL("")
    options = []
    for option in table.options:
        name, _, value = option.partition("=")
        if not _OPTION_NAME.match(name):
            raise ValueError(f"unexpected storage option {option!r} on {table.qualified}")
        options.append(sql.SQL("{} = {}").format(sql.SQL(name), sql.Literal(value)))
    return sql.SQL(" WITH ({})").format(sql.SQL(", ").join(options))


def create_table_statement(schema: DatabaseSchema, table: TableDef) -> Statement:
    elements = [column_definition(schema, table, column) for column in table.columns]
    elements += [
        sql.SQL("CONSTRAINT {} {}").format(
            sql.Identifier(c.name),
            check_constraint(c.definition, c.kind, f"constraint {table.qualified}.{c.name}"),
        )
        for c in table.constraints
        if inline_check(c)
    ]
    unlogged = sql.SQL("UNLOGGED ") if table.unlogged else sql.SQL("")
    statement = sql.SQL("CREATE {}TABLE {} (\n    {}\n){}").format(
        unlogged, table.qualified.identifier(), sql.SQL(",\n    ").join(elements), _table_options(table)
    )
    return Statement(statement)


def table_statements(schema: DatabaseSchema, table: TableDef) -> list[Statement]:
    name = table.qualified.identifier()
    statements = [create_table_statement(schema, table)]
    statements += comment_statements("TABLE", name, table.comment)
    for constraint in table.constraints:
        if inline_check(constraint):
            statements += constraint_comment_statements(table, constraint)
    for column in table.columns:
        statements += comment_statements(
            "COLUMN", sql.SQL("{}.{}").format(name, sql.Identifier(column.name)), column.comment
        )
    statements.append(owner_statement("TABLE", name, table.owner))
    statements += privilege_statements("TABLE", name, table.owner, table.grants)
    return statements


def schema_statements(schema: DatabaseSchema) -> list[Statement]:
    statements = []
    for namespace in schema.schemas:
        name = sql.Identifier(namespace.name)
        statements.append(Statement(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name)))
        statements += comment_statements("SCHEMA", name, namespace.comment)
        statements.append(owner_statement("SCHEMA", name, namespace.owner))
        statements += privilege_statements("SCHEMA", name, namespace.owner, namespace.grants)
    return statements


def pre_data_statements(schema: DatabaseSchema) -> list[Statement]:
    """Everything after schemas and extensions (which need target-side decisions, see apply)."""
    statements: list[Statement] = []
    for enum in schema.enums:
        statements += enum_statements(enum)
    for sequence in schema.sequences:
        if not _is_identity_sequence(sequence):
            statements += sequence_statements(sequence)
    for table in schema.tables:
        statements += table_statements(schema, table)
    for sequence in schema.sequences:
        if _is_identity_sequence(sequence):
            statements += sequence_statements(sequence)
    return statements


def check_schema(schema: DatabaseSchema) -> None:
    """Render every statement a restore of ``schema`` would run, without running any: a stored
    fragment that does not have the shape of its kind raises :class:`UnsafeFragment` here, before
    anything touched a database."""
    database_setting_statements(schema, "restore_target")
    schema_statements(schema)
    pre_data_statements(schema)
    post_data_statements(schema)
    sequence_value_statements(schema.sequences)
