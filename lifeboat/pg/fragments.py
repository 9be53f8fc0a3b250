"""Check stored SQL fragments against the shape their kind allows, with PostgreSQL's own parser.

A schema capture stores some SQL as text (column types, defaults, CHECK / foreign-key / index
definitions, collations), because that is how the server prints them. A restore runs them as a
superuser, and the repository they come from is storage we do not trust: a planted
``integer; COPY x TO PROGRAM '...'`` would be code execution on the database host. So before a
fragment is put into a statement it is parsed by libpg_query (PostgreSQL's own parser, through
pglast) and its syntax tree must be exactly the shape of its kind:

* a column type is a type name (optionally with constant modifiers and array bounds);
* a default (or generation expression) is one expression without subqueries;
* a constraint definition is one CHECK / FOREIGN KEY / PRIMARY KEY / UNIQUE / EXCLUDE clause;
* an index definition is one ``CREATE [UNIQUE] INDEX name ON table USING method (...)``
  naming the index and table the capture says it belongs to;
* a collation is a (qualified) name.

Also refused everywhere: a ``;``, comments (a ``--`` comment in a fragment would swallow the rest
of the line of the statement it is put into), subqueries, statement keywords, and calls of the
administrative function families that reach outside the database or run SQL given as text
(``pg_*``, ``lo_*``, ``dblink*``, ``query_to_xml``...). Every statement is then executed alone,
over the extended query protocol, so the server itself refuses a second statement
(:func:`lifeboat.pg.ddl_statement.execute_one`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast, enums, parse_sql, parser
from psycopg import sql

from lifeboat.pg.models import QualifiedName


class UnsafeFragment(ValueError):
    """A stored fragment does not have the shape its kind allows (it was not executed)."""


# Node types an expression (default, CHECK body, index expression or predicate) may contain.
_EXPRESSION_NODES = (
    ast.A_ArrayExpr,
    ast.A_Const,
    ast.A_Expr,
    ast.A_Indices,
    ast.A_Indirection,
    ast.BitString,
    ast.Boolean,
    ast.BooleanTest,
    ast.BoolExpr,
    ast.CaseExpr,
    ast.CaseWhen,
    ast.CoalesceExpr,
    ast.CollateClause,
    ast.ColumnRef,
    ast.Float,
    ast.FuncCall,
    ast.Integer,
    ast.MinMaxExpr,
    ast.NamedArgExpr,
    ast.NullTest,
    ast.RowExpr,
    ast.SQLValueFunction,
    ast.String,
    ast.TypeCast,
    ast.TypeName,
)
# Function families that reach outside the database, change server state, or run SQL text.
_FORBIDDEN_FUNCTION_PREFIXES = ("pg_", "lo_", "dblink", "query_to_", "cursor_to_", "xpath")
_FORBIDDEN_FUNCTIONS = frozenset({"set_config", "setval", "loread", "lowrite", "currtid2"})
_STATEMENT_KEYWORDS = frozenset(
    {
        *("ALTER", "ANALYZE", "CALL", "CHECKPOINT", "CLUSTER", "COMMIT", "COPY", "CREATE", "DEALLOCATE"),
        *("DELETE", "DISCARD", "DO", "DROP", "EXECUTE", "EXPLAIN", "GRANT", "IMPORT", "INSERT", "LISTEN"),
        *("LOAD", "LOCK", "MERGE", "NOTIFY", "PREPARE", "REASSIGN", "REFRESH", "REINDEX", "RESET", "REVOKE"),
        *("ROLLBACK", "SAVEPOINT", "SECURITY", "SELECT", "SET", "SHOW", "TABLE", "TRUNCATE", "UNLISTEN"),
        *("UPDATE", "VACUUM", "VALUES"),
    }
)
# Privileges an ACL entry can carry (aclexplode's privilege_type).
PRIVILEGES = frozenset(
    {
        *("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"),
        *("USAGE", "CREATE", "CONNECT", "TEMPORARY", "TEMP", "EXECUTE", "SET", "ALTER SYSTEM"),
    }
)
SEQUENCE_TYPES = frozenset({"smallint", "integer", "bigint"})
_SELECT_BASELINE = parse_sql("SELECT 1")[0].stmt


def _fail(kind: str, where: str, text: str, reason: str) -> UnsafeFragment:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return UnsafeFragment(f"{where}: {kind} {shown!r} refused ({reason})")


def _tokens(kind: str, where: str, text: str, *, statement_keywords: bool) -> None:
    """Lexical checks: no ``;``, no comments, no backslash, no statement keywords outside strings."""
    if "\\" in text:
        # Whether a backslash escapes a quote depends on standard_conforming_strings: refuse the doubt.
        raise _fail(kind, where, text, "backslash")
    try:
        tokens = parser.scan(text)
    except parser.ParseError as exc:
        raise _fail(kind, where, text, f"does not parse: {exc}") from None
    for token in tokens:
        if token.name == "ASCII_59":
            raise _fail(kind, where, text, "a ';' outside a string")
        if token.name in ("SQL_COMMENT", "C_COMMENT"):
            raise _fail(kind, where, text, "a comment")
        word = text[token.start : token.end + 1].upper()
        if statement_keywords and token.kind != "NO_KEYWORD" and word in _STATEMENT_KEYWORDS:
            raise _fail(kind, where, text, f"statement keyword {word}")


def _parse_one(kind: str, where: str, text: str, wrapped: str) -> Any:
    try:
        statements = parse_sql(wrapped)
    except parser.ParseError as exc:
        raise _fail(kind, where, text, f"does not parse: {str(exc).split(', at index')[0]}") from None
    if len(statements) != 1:
        raise _fail(kind, where, text, f"{len(statements)} statements")
    return statements[0].stmt


def _slots(node: Any) -> list[str]:
    """Field names of a pglast node (its ``__slots__`` dict, which the stubs do not declare)."""
    return list(node.__slots__)


def _walk(node: Any) -> Iterator[ast.Node]:
    if isinstance(node, ast.Node):
        yield node
        for name in _slots(node):
            yield from _walk(getattr(node, name, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def _function_name(call: ast.FuncCall) -> str:
    names: Any = call.funcname
    return str(names[-1].sval).lower()


def _check_expression_tree(kind: str, where: str, text: str, tree: Any) -> None:
    for node in _walk(tree):
        if not isinstance(node, _EXPRESSION_NODES):
            raise _fail(kind, where, text, f"{type(node).__name__} is not allowed in an expression")
        if isinstance(node, ast.FuncCall):
            name = _function_name(node)
            if name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_FUNCTION_PREFIXES):
                raise _fail(kind, where, text, f"function {name} is not allowed")
            if node.agg_filter is not None or node.over is not None or node.agg_order:
                raise _fail(kind, where, text, "aggregate or window call")


def _single_select_target(kind: str, where: str, text: str, wrapped: str) -> Any:
    """Parse ``SELECT <fragment>`` and return the one target's value (nothing else in the SELECT)."""
    stmt = _parse_one(kind, where, text, wrapped)
    if not isinstance(stmt, ast.SelectStmt) or stmt.targetList is None or len(stmt.targetList) != 1:
        raise _fail(kind, where, text, "not a single value")
    for name in _slots(stmt):
        if name != "targetList" and getattr(stmt, name, None) != getattr(_SELECT_BASELINE, name, None):
            raise _fail(kind, where, text, f"unexpected {name}")
    target = stmt.targetList[0]
    if target.name is not None or target.indirection:
        raise _fail(kind, where, text, "not a single value")
    return target.val


def _check_type_name(kind: str, where: str, text: str, type_name: Any) -> None:
    if not isinstance(type_name, ast.TypeName) or type_name.setof or type_name.pct_type:
        raise _fail(kind, where, text, "not a type name")
    for node in _walk(type_name):
        if not isinstance(node, ast.TypeName | ast.String | ast.A_Const | ast.Integer):
            raise _fail(kind, where, text, f"{type(node).__name__} in a type name")


# Column types that passed check_type: a schema repeats a few types over hundreds of columns,
# and the check depends only on the text (``where`` only names the place in an error).
_CHECKED_TYPES: set[str] = set()


def check_type(text: str, where: str) -> sql.SQL:
    """A column type as ``format_type()`` prints it: ``character varying(255)``, ``letta.vector(4096)``."""
    if text in _CHECKED_TYPES:
        return sql.SQL(text)
    kind = "column type"
    _tokens(kind, where, text, statement_keywords=True)
    value = _single_select_target(kind, where, text, f"SELECT NULL::{text}")
    if not isinstance(value, ast.TypeCast) or not (isinstance(value.arg, ast.A_Const) and value.arg.isnull):
        raise _fail(kind, where, text, "not a type name")
    _check_type_name(kind, where, text, value.typeName)
    _CHECKED_TYPES.add(text)
    return sql.SQL(text)


def check_sequence_type(text: str, where: str) -> sql.SQL:
    if text not in SEQUENCE_TYPES:
        raise _fail("sequence type", where, text, f"not one of {', '.join(sorted(SEQUENCE_TYPES))}")
    return sql.SQL(text)


def check_expression(text: str, where: str, kind: str = "default") -> sql.SQL:
    """A default or generation expression: one expression, no subquery, no administrative function."""
    _tokens(kind, where, text, statement_keywords=True)
    value = _single_select_target(kind, where, text, f"SELECT {text}")
    _check_expression_tree(kind, where, text, value)
    return sql.SQL(text)


def check_collation(text: str, where: str) -> sql.SQL:
    kind = "collation"
    _tokens(kind, where, text, statement_keywords=True)
    value = _single_select_target(kind, where, text, f"SELECT NULL COLLATE {text}")
    if not isinstance(value, ast.CollateClause) or not all(
        isinstance(n, ast.String) for n in value.collname or ()
    ):
        raise _fail(kind, where, text, "not a collation name")
    return sql.SQL(text)


_CONSTRAINT_TYPES = {
    "c": enums.ConstrType.CONSTR_CHECK,
    "f": enums.ConstrType.CONSTR_FOREIGN,
    "p": enums.ConstrType.CONSTR_PRIMARY,
    "u": enums.ConstrType.CONSTR_UNIQUE,
    "x": enums.ConstrType.CONSTR_EXCLUSION,
}


def parse_constraint(definition: str, kind: str, where: str) -> ast.Constraint:
    """The syntax tree of a ``pg_get_constraintdef()`` text of kind ``kind`` (p/u/c/f/x), checked."""
    what = "constraint definition"
    if kind not in _CONSTRAINT_TYPES:
        raise _fail(what, where, definition, f"unknown constraint kind {kind!r}")
    _tokens(what, where, definition, statement_keywords=False)
    stmt = _parse_one(what, where, definition, f"ALTER TABLE ONLY t ADD CONSTRAINT c {definition}")
    if not isinstance(stmt, ast.AlterTableStmt) or len(stmt.cmds or ()) != 1:
        raise _fail(what, where, definition, "not one constraint clause")
    command: Any = (stmt.cmds or ())[0]
    constraint = command.def_
    if command.subtype != enums.AlterTableType.AT_AddConstraint or not isinstance(constraint, ast.Constraint):
        raise _fail(what, where, definition, "not one constraint clause")
    if constraint.contype != _CONSTRAINT_TYPES[kind] or constraint.conname != "c":
        raise _fail(what, where, definition, f"not a {_CONSTRAINT_TYPES[kind].name[7:]} constraint")
    if constraint.indexname or constraint.indexspace:
        raise _fail(what, where, definition, "USING INDEX / tablespace clause")
    for expression in (constraint.raw_expr, constraint.where_clause):
        if expression is not None:
            _check_expression_tree(what, where, definition, expression)
    for element, _operators in constraint.exclusions or ():
        _check_index_element(what, where, definition, element)
    for option in constraint.options or ():
        _check_option(what, where, definition, option)
    return constraint


def check_constraint(definition: str, kind: str, where: str) -> sql.SQL:
    parse_constraint(definition, kind, where)
    return sql.SQL(definition)


def _check_option(kind: str, where: str, text: str, option: Any) -> None:
    if not isinstance(option, ast.DefElem) or option.defnamespace:
        raise _fail(kind, where, text, "unexpected storage option")
    value = option.arg
    constant = value is None or isinstance(value, ast.Integer | ast.Float | ast.String | ast.Boolean)
    word = isinstance(value, ast.TypeName) and len(value.names or ()) == 1 and not value.typmods
    if not (constant or word):
        raise _fail(kind, where, text, "storage option value is not a constant")


def _check_index_element(kind: str, where: str, text: str, element: Any) -> None:
    if not isinstance(element, ast.IndexElem):
        raise _fail(kind, where, text, "not an index column")
    if element.expr is not None:
        _check_expression_tree(kind, where, text, element.expr)
    for name in element.collation or ():
        if not isinstance(name, ast.String):
            raise _fail(kind, where, text, "not a collation name")
    for name in element.opclass or ():
        if not isinstance(name, ast.String):
            raise _fail(kind, where, text, "not an operator class name")
    for option in element.opclassopts or ():
        _check_option(kind, where, text, option)


def check_index(
    definition: str, where: str, *, name: str, table: QualifiedName, unique: bool | None = None
) -> sql.SQL:
    """``pg_get_indexdef()``: one CREATE [UNIQUE] INDEX of index ``name`` on ``table``, nothing else."""
    kind = "index definition"
    _tokens(kind, where, definition, statement_keywords=False)
    stmt = _parse_one(kind, where, definition, definition)
    if not isinstance(stmt, ast.IndexStmt):
        raise _fail(kind, where, definition, "not a CREATE INDEX")
    relation: Any = stmt.relation
    if stmt.idxname != name or relation.schemaname != table.schema_ or relation.relname != table.name:
        raise _fail(kind, where, definition, f"does not create index {name} on {table}")
    if relation.catalogname or stmt.concurrent or stmt.tableSpace or stmt.if_not_exists:
        raise _fail(kind, where, definition, "unexpected clause")
    if unique is not None and bool(stmt.unique) != unique:
        raise _fail(kind, where, definition, "unique" if stmt.unique else "not unique")
    for element in (*(stmt.indexParams or ()), *(stmt.indexIncludingParams or ())):
        _check_index_element(kind, where, definition, element)
    for option in stmt.options or ():
        _check_option(kind, where, definition, option)
    if stmt.whereClause is not None:
        _check_expression_tree(kind, where, definition, stmt.whereClause)
    return sql.SQL(definition)


def index_has_expressions(definition: str) -> bool:
    """Whether a ``pg_get_indexdef()`` text indexes an expression (``ANALYZE`` gathers statistics for
    those, so a table's ``ANALYZE`` must follow such an index, and may precede plain ones)."""
    stmt = _parse_one("index definition", "", definition, definition)
    return not isinstance(stmt, ast.IndexStmt) or any(
        getattr(element, "expr", None) is not None for element in stmt.indexParams or ()
    )


def check_privilege(privilege: str, where: str) -> sql.SQL:
    if privilege not in PRIVILEGES:
        raise _fail("privilege", where, privilege, "not a privilege name")
    return sql.SQL(privilege)
