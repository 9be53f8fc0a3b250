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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from lifeboat.pg.fragments import (
    UnsafeFragment,
    check_collation,
    check_constraint,
    check_expression,
    check_index,
    check_privilege,
    check_sequence_type,
    check_type,
)
from lifeboat.pg.models import (
    ColumnDef,
    ConstraintDef,
    DatabaseSchema,
    DatabaseSetting,
    EnumDef,
    Grant,
    IndexDef,
    QualifiedName,
    SequenceDef,
    TableDef,
)

# Settings whose value is a list of names, stored quoted (pg_dump's variable_is_guc_list_quote).
_LIST_SETTINGS = {
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
}
# Settings a restore never applies: they load code into every session, or change how a session
# lexes strings (so a fragment checked as one statement could mean something else there).
_REFUSED_SETTINGS = {
    "backslash_quote",
    "dynamic_library_path",
    "local_preload_libraries",
    "role",
    "session_authorization",
    "session_preload_libraries",
    "shared_preload_libraries",
    "standard_conforming_strings",
}
Query = sql.SQL | sql.Composed  # what Connection.execute accepts
_OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class Statement:
    """One DDL statement, with what a scheduler and a role check need to know about it.

    ``then`` are statements that must follow it on the same connection (an object's comment
    after its creation); each is executed on its own, never joined into one string.
    """

    sql: Query
    then: tuple[Query, ...] = ()
    exclusive_locks: frozenset[str] = frozenset()
    shared_locks: frozenset[str] = frozenset()
    roles: frozenset[str] = field(default_factory=frozenset)
    key: str = ""  # names the statement for ``after`` of others (post-data)
    after: frozenset[str] = frozenset()  # keys that must have run first (missing keys are ignored)

    def text(self) -> str:
        return self.sql.as_string()

    def queries(self) -> Sequence[Query]:
        return (self.sql, *self.then)

    def conflicts_with(self, other: Statement) -> bool:
        return bool(
            self.exclusive_locks & (other.exclusive_locks | other.shared_locks)
            or other.exclusive_locks & self.shared_locks
        )


def _roles(*names: str | None) -> frozenset[str]:
    return frozenset(name for name in names if name)


def execute_one(conn: psycopg.Connection, query: Query) -> None:
    """Run exactly one statement: the extended query protocol makes the server refuse a second one
    (the simple protocol, which psycopg uses for a query without parameters, would run them all)."""
    conn.execute(query, prepare=False, binary=True)


def execute_statement_queries(conn: psycopg.Connection, statement: Statement) -> None:
    for query in statement.queries():
        execute_one(conn, query)


# ---- database-level settings -------------------------------------------------------------------


def split_list_setting(value: str) -> list[str]:
    """Split a stored list setting (``"$user", public``) into its elements, unquoted."""
    elements: list[str] = []
    current: list[str] = []
    in_quotes = False
    index = 0
    while index < len(value):
        char = value[index]
        if in_quotes:
            if char == '"' and value[index + 1 : index + 2] == '"':
                current.append('"')
                index += 1
            elif char == '"':
                in_quotes = False
            else:
                current.append(char)
        elif char == '"':
            in_quotes = True
        elif char == ",":
            elements.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    last = "".join(current).strip()
    if last or elements:
        elements.append(last)
    return elements


def _setting_name(name: str) -> sql.Composable:
    return sql.SQL(".").join(sql.Identifier(part) for part in name.split("."))


def setting_statement(database: str, setting: DatabaseSetting) -> Statement:
    if setting.name.lower() in _REFUSED_SETTINGS:
        raise UnsafeFragment(f"database setting {setting.name!r} refused (a restore never applies it)")
    if setting.name.lower() in _LIST_SETTINGS:
        values = [sql.Literal(element) for element in split_list_setting(setting.value)]
        value: sql.Composable = sql.SQL(", ").join(values) if values else sql.Literal("")
    else:
        value = sql.Literal(setting.value)
    if setting.role is None:
        target = sql.SQL("ALTER DATABASE {}").format(sql.Identifier(database))
    else:
        target = sql.SQL("ALTER ROLE {} IN DATABASE {}").format(
            sql.Identifier(setting.role), sql.Identifier(database)
        )
    statement = sql.SQL("{} SET {} TO {}").format(target, _setting_name(setting.name), value)
    return Statement(statement, roles=_roles(setting.role))


def database_setting_statements(schema: DatabaseSchema, database: str) -> list[Statement]:
    """``ALTER DATABASE ... SET``, the database's comment and privileges (any connection)."""
    name = sql.Identifier(database)
    statements = [setting_statement(database, setting) for setting in schema.settings]
    statements += _comment("DATABASE", name, schema.database.comment)
    statements += _privileges("DATABASE", name, schema.database.owner, schema.database.grants)
    return statements


# ---- pre-data ----------------------------------------------------------------------------------


def _comment(kind: str, target: sql.Composable, comment: str | None) -> list[Statement]:
    if comment is None:
        return []
    return [Statement(sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), target, sql.Literal(comment)))]


def _owner(kind: str, target: sql.Composable, owner: str) -> Statement:
    statement = sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), target, sql.Identifier(owner))
    return Statement(statement, roles=_roles(owner))


def _grantee(grant: Grant) -> sql.Composable:
    return sql.SQL("PUBLIC") if grant.grantee is None else sql.Identifier(grant.grantee)


def _privileges(kind: str, target: sql.Composable, owner: str, grants: list[Grant] | None) -> list[Statement]:
    """Reproduce an explicit ACL: revoke what defaults gave, then grant each captured entry."""
    if grants is None:
        return []
    statements = [Statement(sql.SQL("REVOKE ALL ON {} {} FROM PUBLIC").format(sql.SQL(kind), target))]
    if any(grant.grantee == owner for grant in grants):  # the capture left out a default owner ACL
        revoke = sql.SQL("REVOKE ALL ON {} {} FROM {}").format(sql.SQL(kind), target, sql.Identifier(owner))
        statements.append(Statement(revoke, roles=_roles(owner)))
    for grant in grants:
        option = sql.SQL(" WITH GRANT OPTION") if grant.grantable else sql.SQL("")
        privilege = check_privilege(grant.privilege, f"{kind.lower()} {target.as_string()} grant")
        statement = sql.SQL("GRANT {} ON {} {} TO {}{}").format(
            privilege, sql.SQL(kind), target, _grantee(grant), option
        )
        statements.append(Statement(statement, roles=_roles(grant.grantee)))
    return statements


def enum_statements(enum: EnumDef) -> list[Statement]:
    name = enum.qualified.identifier()
    labels = sql.SQL(", ").join(sql.Literal(label) for label in enum.labels)
    create = Statement(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(name, labels))
    return [create, *_comment("TYPE", name, enum.comment), _owner("TYPE", name, enum.owner)]


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
    statements += _comment("SEQUENCE", name, sequence.comment)
    if not _is_identity_sequence(sequence):
        statements.append(_owner("SEQUENCE", name, sequence.owner))
    statements += _privileges("SEQUENCE", name, sequence.owner, sequence.grants)
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


def _inline_check(constraint: ConstraintDef) -> bool:
    return constraint.kind == "c" and constraint.validated


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
        if _inline_check(c)
    ]
    unlogged = sql.SQL("UNLOGGED ") if table.unlogged else sql.SQL("")
    statement = sql.SQL("CREATE {}TABLE {} (\n    {}\n){}").format(
        unlogged, table.qualified.identifier(), sql.SQL(",\n    ").join(elements), _table_options(table)
    )
    return Statement(statement)


def table_statements(schema: DatabaseSchema, table: TableDef) -> list[Statement]:
    name = table.qualified.identifier()
    statements = [create_table_statement(schema, table)]
    statements += _comment("TABLE", name, table.comment)
    for constraint in table.constraints:
        if _inline_check(constraint):
            statements += _constraint_comment(table, constraint)
    for column in table.columns:
        statements += _comment(
            "COLUMN", sql.SQL("{}.{}").format(name, sql.Identifier(column.name)), column.comment
        )
    statements.append(_owner("TABLE", name, table.owner))
    statements += _privileges("TABLE", name, table.owner, table.grants)
    return statements


def schema_statements(schema: DatabaseSchema) -> list[Statement]:
    statements = []
    for namespace in schema.schemas:
        name = sql.Identifier(namespace.name)
        statements.append(Statement(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name)))
        statements += _comment("SCHEMA", name, namespace.comment)
        statements.append(_owner("SCHEMA", name, namespace.owner))
        statements += _privileges("SCHEMA", name, namespace.owner, namespace.grants)
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


# ---- post-data ---------------------------------------------------------------------------------


def _constraint_comment(table: TableDef, constraint: ConstraintDef) -> list[Statement]:
    target = sql.SQL("{} ON {}").format(sql.Identifier(constraint.name), table.qualified.identifier())
    return _comment("CONSTRAINT", target, constraint.comment)


def _then(comments: list[Statement]) -> tuple[Query, ...]:
    """A comment runs after its object's creation, on the same connection (one unit for the scheduler)."""
    return tuple(query for comment in comments for query in comment.queries())


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
            then=_then(_constraint_comment(table, constraint)),
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
        then=_then(_constraint_comment(table, constraint)),
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
        then=_then(_comment("INDEX", index_name, index.comment)),
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
            if constraint.kind == "f" or (constraint.kind == "c" and not _inline_check(constraint)):
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


def check_schema(schema: DatabaseSchema) -> None:
    """Render every statement a restore of ``schema`` would run, without running any: a stored
    fragment that does not have the shape of its kind raises :class:`UnsafeFragment` here, before
    anything touched a database."""
    database_setting_statements(schema, "restore_target")
    schema_statements(schema)
    pre_data_statements(schema)
    post_data_statements(schema)
    sequence_value_statements(schema.sequences)
