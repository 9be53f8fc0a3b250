"""Reading PostgreSQL's system catalog: tables, columns, keys, foreign keys, indexes, sequences.

The one place that knows the catalog SQL lifeboat relies on. Schema capture, the Letta schema
shape check, verify's context and agent restore all read through it, so a fix (a new major, a
quoting bug) lands once. Every read covers the tables of ONE schema and returns plain values keyed
by table name; nothing here knows Letta.

Only catalog columns that exist in PostgreSQL 13 are used (production runs PostgreSQL 15):
PostgreSQL 18's catalogued NOT NULL constraints (``contype = 'n'``) are read where present, and
simply absent on older servers.

``format_type`` and ``pg_get_*def`` print names relative to the session's ``search_path``;
callers that need qualified names (schema capture) set ``search_path = pg_catalog`` first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

Connection = psycopg.Connection[Any]
ConstraintKind = Literal["p", "u", "c", "f", "x"]

# The ordered column names of a constraint's key (``conkey``) or referenced key (``confkey``).
_KEY_COLUMNS = """ARRAY(SELECT a.attname FROM unnest(con.{key}) WITH ORDINALITY k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.{rel} AND a.attnum = k.attnum
             ORDER BY k.ord)"""

# Tables (plain and partitioned) of the schema named by the ``schema`` parameter.
_TABLES_OF_SCHEMA = """c.relkind IN ('r', 'p')
  AND c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = %(schema)s)"""

_COLUMNS_SQL = f"""
SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END,
       pg_catalog.col_description(a.attrelid, a.attnum),
       (SELECT nn.conname FROM pg_catalog.pg_constraint nn
        WHERE nn.contype = 'n' AND nn.conrelid = a.attrelid AND nn.conkey[1] = a.attnum LIMIT 1)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE {_TABLES_OF_SCHEMA}
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS_SQL = f"""
SELECT c.relname, con.conname, con.contype, pg_catalog.pg_get_constraintdef(con.oid), con.convalidated,
       {_KEY_COLUMNS.format(key="conkey", rel="conrelid")},
       rn.nspname, r.relname,
       {_KEY_COLUMNS.format(key="confkey", rel="confrelid")},
       con.confdeltype::text, con.condeferrable, con.condeferred,
       pg_catalog.obj_description(con.oid, 'pg_constraint'),
       CASE WHEN con.contype IN ('p', 'u') THEN pg_catalog.pg_get_indexdef(con.conindid) END
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
WHERE {_TABLES_OF_SCHEMA} AND con.contype IN ('p', 'u', 'c', 'f', 'x')
ORDER BY c.relname, con.contype, con.conname
"""

# Indexes not created by a constraint; invalid ones (a failed CREATE INDEX CONCURRENTLY) are
# skipped, as pg_dump does.
_INDEXES_SQL = f"""
SELECT c.relname, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
       pg_catalog.obj_description(i.indexrelid, 'pg_class')
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE {_TABLES_OF_SCHEMA} AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY c.relname, ic.relname
"""

_LEADING_SQL = f"""
SELECT c.relname, a.attname
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE {_TABLES_OF_SCHEMA} AND i.indisvalid AND i.indpred IS NULL
"""

_SEQUENCES_SQL = """
SELECT c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind = 'S'
ORDER BY c.relname
"""

# Schemas holding some of the named tables: most of them first, then those on the session's
# search_path, then the one named like the database, then by name.
_SCHEMAS_WITH_TABLES_SQL = """
SELECT n.nspname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relname = ANY (%(tables)s)
GROUP BY n.nspname
ORDER BY count(*) DESC, n.nspname = ANY (pg_catalog.current_schemas(false)) DESC,
         n.nspname = pg_catalog.current_database() DESC, n.nspname
"""

_EXTENSION_SQL = """
SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = %(extension)s
"""

_UNREADABLE_SQL = """
SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'S')
  AND NOT (CASE WHEN c.relkind = 'S' THEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
                ELSE pg_catalog.has_table_privilege(c.oid, 'SELECT') END)
ORDER BY 1
"""


@dataclass(frozen=True)
class Extension:
    """An installed extension: the schema it lives in and its version."""

    schema: str
    version: str


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): relative to the session's search_path
    not_null: bool
    default: str | None = None  # pg_get_expr() of the default
    identity: str = ""  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    generated: str = ""  # '' | 's' (STORED)
    collation: str | None = None  # qualified, only when it differs from the type's
    comment: str | None = None
    not_null_name: str | None = None  # PostgreSQL 18+: the NOT NULL constraint's name


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: ConstraintKind  # 'p' primary key, 'u' unique, 'c' check, 'f' foreign key, 'x' exclusion
    definition: str  # pg_get_constraintdef()
    columns: tuple[str, ...]
    validated: bool = True
    ref_schema: str | None = None  # foreign keys: the referenced table...
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()  # ...and its columns
    on_delete: str = "a"  # 'a' no action, 'r' restrict, 'c' cascade, 'n' set null, 'd' set default
    deferrable: bool = False
    deferred: bool = False
    comment: str | None = None
    index_definition: str | None = None  # primary keys and unique constraints: their index


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of a table, naming the referenced table without its schema (the form shape
    checks record: Letta keeps every table in one schema)."""

    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str  # 'a' no action, 'r' restrict, 'c' cascade, 'n' set null, 'd' set default
    deferrable: bool = False


@dataclass(frozen=True)
class Index:
    name: str
    definition: str  # pg_get_indexdef(): a complete CREATE INDEX
    comment: str | None = None


def columns(conn: Connection, schema: str) -> dict[str, list[Column]]:
    """Per table of ``schema``, its columns in attribute order."""
    found: dict[str, list[Column]] = defaultdict(list)
    for r in conn.execute(_COLUMNS_SQL, {"schema": schema}):
        found[r[0]].append(Column(*r[1:]))
    return dict(found)


def constraints(conn: Connection, schema: str) -> dict[str, list[Constraint]]:
    """Per table of ``schema``, its primary, unique, check, foreign-key and exclusion constraints
    (ordered by kind, then name)."""
    found: dict[str, list[Constraint]] = defaultdict(list)
    for r in conn.execute(_CONSTRAINTS_SQL, {"schema": schema}):
        found[r[0]].append(
            Constraint(
                name=r[1], kind=r[2], definition=r[3], validated=r[4], columns=tuple(r[5]),
                ref_schema=r[6], ref_table=r[7], ref_columns=tuple(r[8] or ()), on_delete=r[9],
                deferrable=r[10], deferred=r[11], comment=r[12], index_definition=r[13],
            )
        )  # fmt: skip
    return dict(found)


def indexes(conn: Connection, schema: str) -> dict[str, list[Index]]:
    """Per table of ``schema``, its valid indexes that no constraint created."""
    found: dict[str, list[Index]] = defaultdict(list)
    for table, name, definition, comment in conn.execute(_INDEXES_SQL, {"schema": schema}):
        found[table].append(Index(name, definition, comment))
    return dict(found)


def leading_index_columns(conn: Connection, schema: str) -> dict[str, set[str]]:
    """Per table of ``schema``, the columns some valid, non-partial index starts with (those an
    equality on one column can be looked up by; expression indexes start with no column)."""
    found: dict[str, set[str]] = defaultdict(set)
    for table, column in conn.execute(_LEADING_SQL, {"schema": schema}):
        found[table].add(column)
    return dict(found)


def sequence_names(conn: Connection, schema: str) -> tuple[str, ...]:
    return tuple(row[0] for row in conn.execute(_SEQUENCES_SQL, {"schema": schema}))


def column_types(conn: Connection, schema: str) -> dict[str, dict[str, str]]:
    """table -> column -> type as ``format_type`` prints it."""
    return {table: {c.name: c.type for c in cols} for table, cols in columns(conn, schema).items()}


def foreign_keys(conn: Connection, schema: str) -> tuple[ForeignKey, ...]:
    """Foreign keys of the tables of ``schema``, ordered by table then name."""
    return tuple(
        ForeignKey(c.name, table, c.columns, c.ref_table, c.ref_columns, c.on_delete, c.deferrable)
        for table, cons in sorted(constraints(conn, schema).items())
        for c in cons
        if c.kind == "f" and c.ref_table is not None
    )


def primary_keys(conn: Connection, schema: str) -> dict[str, tuple[str, ...]]:
    """Per table that has one, the columns of its primary key."""
    return {
        table: c.columns for table, cons in constraints(conn, schema).items() for c in cons if c.kind == "p"
    }


def unique_keys(conn: Connection, schema: str) -> dict[str, list[tuple[str, ...]]]:
    """Per table, the column lists of its primary key (first) and unique constraints (fewest
    columns first, then by name)."""
    keys: dict[str, list[tuple[str, ...]]] = {}
    for table, cons in constraints(conn, schema).items():
        ranked = sorted(
            (c for c in cons if c.kind in ("p", "u")), key=lambda c: (c.kind != "p", len(c.columns), c.name)
        )
        if ranked:
            keys[table] = [c.columns for c in ranked]
    return keys


def schemas_with_tables(conn: Connection, tables: Sequence[str]) -> list[str]:
    """Schemas holding tables named ``tables``, best match first: most of them, then on the
    session's search_path, then named like the database."""
    return [row[0] for row in conn.execute(_SCHEMAS_WITH_TABLES_SQL, {"tables": list(tables)})]


def installed_extension(conn: Connection, extension: str) -> Extension | None:
    """Where and in which version ``extension`` is installed (None when it is not)."""
    row = conn.execute(_EXTENSION_SQL, {"extension": extension}).fetchone()
    return None if row is None else Extension(str(row[0]), str(row[1]))


def extension_schema(conn: Connection, extension: str) -> str | None:
    """The schema an installed extension lives in (None when it is not installed)."""
    found = installed_extension(conn, extension)
    return None if found is None else found.schema


def unreadable_relations(conn: Connection, schema: str) -> list[str]:
    """Tables and sequences of ``schema`` the session's role may not SELECT from (a backup needs all)."""
    return [str(row[0]) for row in conn.execute(_UNREADABLE_SQL, {"schema": schema})]


def current_schema(conn: Connection) -> str | None:
    """The first schema of the session's search_path that exists (where unqualified names resolve)."""
    row = conn.execute("SELECT pg_catalog.current_schema()").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def set_local_search_path(conn: Connection, schemas: Sequence[str]) -> None:
    """``SET LOCAL search_path`` (this transaction only) to ``schemas``, quoted."""
    path = sql.SQL(", ").join(sql.Identifier(schema) for schema in schemas)
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(path))
