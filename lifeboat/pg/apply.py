"""Recreate a captured schema in an empty database, section by section.

Order of a restore: :func:`apply_database_settings` (any time), :func:`apply_pre_data`, the
caller's COPY of every table (:func:`lifeboat.pg.copystream.copy_in`), :func:`apply_post_data`,
:func:`apply_sequence_values`, :func:`analyze`. Each step appends what it could not do
(missing roles, extension versions) to an :class:`ApplyReport` instead of failing, because an
owner role missing on a drill server should not make the data unrecoverable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg import sql

from lifeboat.errors import DatabaseError
from lifeboat.pg.connect import connect, existing_roles, one_line, server_info
from lifeboat.pg.ddl import (
    Statement,
    database_setting_statements,
    execute_one,
    execute_statement_queries,
    load_key,
    post_data_statements,
    pre_data_statements,
    schema_statements,
    sequence_value_statements,
)
from lifeboat.pg.fragments import index_has_expressions
from lifeboat.pg.models import DatabaseSchema, ExtensionDef, TableDef
from lifeboat.pg.parallel import execute_statement, run_on_connections, run_statements
from lifeboat.pg.task_order import estimated_seconds, longest_chain_first

# Sessions that build indexes: more memory makes sorts of big tables cheaper; durability of
# each DDL commit is not needed until the restore as a whole is done. Every heap scan starts at
# the table's first block (no synchronized scans): a table was loaded in its stream's order
# (agent_id, then sequence_id or id), so the builds of indexes that lead with that order get
# their tuples already sorted, which PostgreSQL's sort detects in one pass. With synchronized
# scans, two builds on one table at once start mid-table and sort a rotated order in full:
# 0.93 s (4.4 %) more server CPU over 5 paired rounds (BENCHMARKS.md, session 7).
RESTORE_SESSION_SQL = (
    "SET maintenance_work_mem = '256MB'",
    "SET synchronous_commit = off",
    "SET synchronize_seqscans = off",
)
# With two or more connections each building an index, parallel maintenance workers only add
# processes for cores those connections already keep busy, and a parallel build writes each
# worker's sorted run to temporary files for the leader to merge (102 files, 750 MB in the
# 5,000-agent benchmark). Without them: ~8 % less server CPU and no temporary files
# (BENCHMARKS.md, session 6). A single connection (``--jobs 1``) keeps the server's default.
NO_PARALLEL_BUILD_WORKERS = "SET max_parallel_maintenance_workers = 0"


def restore_session_sql(jobs: int) -> tuple[str, ...]:
    """What each restore connection sets before its first statement."""
    return RESTORE_SESSION_SQL + ((NO_PARALLEL_BUILD_WORKERS,) if jobs >= 2 else ())


@dataclass
class ApplyReport:
    missing_roles: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)  # statements not run, with why
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per scheduled item: "load:s.t", "index:s.i"...
    started: dict[str, float] = field(default_factory=dict)  # each item's (first) start, time.monotonic()

    def skip(self, statement: Statement, missing: set[str]) -> None:
        self.missing_roles |= missing
        self.skipped.append(f"{statement.text()}  -- role(s) missing: {', '.join(sorted(missing))}")


def _run_if_roles_exist(
    conn: psycopg.Connection, statements: Sequence[Statement], roles: set[str], report: ApplyReport
) -> None:
    for statement in statements:
        missing = set(statement.roles - roles)
        if missing:
            report.skip(statement, missing)
            continue
        _execute(conn, statement)


def _execute(conn: psycopg.Connection, statement: Statement) -> None:
    try:
        execute_statement_queries(conn, statement)
    except psycopg.Error as exc:
        raise DatabaseError(f"{one_line(exc)} (while running: {statement.text()[:300]})") from exc


def _filter_by_roles(
    statements: Sequence[Statement], roles: set[str], report: ApplyReport
) -> list[Statement]:
    kept = []
    for statement in statements:
        missing = set(statement.roles - roles)
        if missing:
            report.skip(statement, missing)
        else:
            kept.append(statement)
    return kept


def apply_database_settings(
    conn: psycopg.Connection, schema: DatabaseSchema, database: str, report: ApplyReport | None = None
) -> ApplyReport:
    """``ALTER DATABASE <database> SET ...`` (search_path...) from the capture; any connection."""
    report = report if report is not None else ApplyReport()
    statements = database_setting_statements(schema, database)
    _run_if_roles_exist(conn, statements, existing_roles(conn), report)
    return report


def apply_pre_data(
    conn: psycopg.Connection, schema: DatabaseSchema, report: ApplyReport | None = None
) -> ApplyReport:
    """Schemas, extensions, types, sequences and tables, in one transaction.

    ``conn`` is an autocommit connection to the (empty) target database as a role that can
    create the extensions — a superuser for ``vector``, which is not a trusted extension.
    A ``public`` schema the source did not have is dropped (it must be empty).
    """
    report = report if report is not None else ApplyReport()
    roles = existing_roles(conn)
    report.warnings += check_target_version(conn, schema)
    _refuse_existing_tables(conn, schema)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)")
            _drop_public_if_absent(conn, schema)
            _run_if_roles_exist(conn, schema_statements(schema), roles, report)
            for extension in schema.extensions:
                _create_extension(conn, extension, report)
            _run_if_roles_exist(conn, pre_data_statements(schema), roles, report)
    except psycopg.Error as exc:
        raise DatabaseError(f"pre-data: {one_line(exc)}") from exc
    return report


def _refuse_existing_tables(conn: psycopg.Connection, schema: DatabaseSchema) -> None:
    names = [str(table.qualified) for table in schema.tables]
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname || '.' || c.relname = ANY(%s) ORDER BY 1",
        (names,),
    ).fetchall()
    if rows:
        listing = ", ".join(row[0] for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
        raise DatabaseError(
            f"the target database is not empty (it already has {listing}); restore into a new database"
        )


def _drop_public_if_absent(conn: psycopg.Connection, schema: DatabaseSchema) -> None:
    if any(namespace.name == "public" for namespace in schema.schemas):
        return
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'").fetchone():
        try:
            conn.execute("DROP SCHEMA public")
        except psycopg.errors.DependentObjectsStillExist as exc:
            raise DatabaseError(
                "the target database's public schema is not empty, but the backup has no public schema;"
                " restore into a new, empty database"
            ) from exc


def _create_extension(conn: psycopg.Connection, extension: ExtensionDef, report: ApplyReport) -> None:
    installed = conn.execute(
        "SELECT n.nspname, x.extversion FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
        " WHERE x.extname = %s",
        (extension.name,),
    ).fetchone()
    if installed is None:
        version = _available_version(conn, extension, report)
        statement = sql.SQL("CREATE EXTENSION {} WITH SCHEMA {}").format(
            sql.Identifier(extension.name), sql.Identifier(extension.schema_)
        )
        if version is not None:
            statement = sql.SQL("{} VERSION {}").format(statement, sql.Literal(version))
        try:
            execute_one(conn, statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise DatabaseError(
                f"creating extension {extension.name} needs more privileges than role"
                f" {conn.info.user} has ({one_line(exc)}); apply pre-data as a superuser"
            ) from exc
        return
    schema_name, version = installed
    if schema_name != extension.schema_:
        statement = sql.SQL("ALTER EXTENSION {} SET SCHEMA {}").format(
            sql.Identifier(extension.name), sql.Identifier(extension.schema_)
        )
        _execute(conn, Statement(statement))
    if version != extension.version:
        report.warnings.append(
            f"extension {extension.name} is {version} on the target, was {extension.version} on the source"
        )


def _available_version(conn: psycopg.Connection, extension: ExtensionDef, report: ApplyReport) -> str | None:
    """The source's version when the target offers it, else ``None`` (the target's default)."""
    rows = conn.execute(
        "SELECT version FROM pg_available_extension_versions WHERE name = %s", (extension.name,)
    ).fetchall()
    if not rows:
        raise DatabaseError(
            f"extension {extension.name} is not available on the target server; install it there first"
        )
    if any(version == extension.version for (version,) in rows):
        return extension.version
    default = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = %s", (extension.name,)
    ).fetchone()
    report.warnings.append(
        f"extension {extension.name} {extension.version} is not available on the target;"
        f" installing {default[0] if default else 'its default version'}"
    )
    return None


def apply_post_data(
    dsn: str, schema: DatabaseSchema, *, jobs: int = 2, report: ApplyReport | None = None
) -> ApplyReport:
    """Keys and indexes, then foreign keys, then sequence ownership, on ``jobs`` connections.

    Run after the data is loaded: building an index once over all rows is much faster than
    maintaining it row by row, and foreign keys are checked once, in bulk. (Or let
    :func:`load_and_apply_post_data` interleave loads and index builds.)
    """
    report = report if report is not None else ApplyReport()
    with connect(dsn) as conn:
        roles = existing_roles(conn)
    statements = _filter_by_roles(post_data_statements(schema), roles, report)
    run_statements(dsn, statements, jobs, session_sql=restore_session_sql(jobs))
    return report


T = TypeVar("T")


@dataclass(frozen=True)
class TablePart:
    """Part ``index`` of ``count`` of one table's data, for :func:`load_and_apply_post_data`.

    A big table is loaded as several parts on several connections at once (COPY is CPU-bound on
    the server, so one stream keeps one core busy). Parts of a row stream must each be whole
    rows; :meth:`slice` cuts a list (e.g. of line-aligned blobs) into contiguous parts.
    """

    table: TableDef
    index: int = 0
    count: int = 1

    @property
    def whole(self) -> bool:
        """Only a whole-table load may use ``copy_in(..., freeze=True)`` (it truncates first)."""
        return self.count == 1

    def slice(self, items: Sequence[T]) -> Sequence[T]:
        size, extra = divmod(len(items), self.count)
        start = self.index * size + min(self.index, extra)
        return items[start : start + size + (1 if self.index < extra else 0)]


LoadPart = Callable[[psycopg.Connection, TablePart], object]


def parts_per_table(tables: Sequence[TableDef], jobs: int) -> dict[str, int]:
    """Split a table when it alone is more than a connection's fair share of all the data.

    Without it, a restore dominated by one table (Letta's messages) loads on one core while the
    others idle. Not the default: on the (shared, busy) 2-core test machine two COPY streams
    into one table were not measurably faster than one FREEZE stream; measure on yours.
    """
    total = sum(table.total_bytes for table in tables)
    if jobs < 2 or total <= 0:
        return {str(table.qualified): 1 for table in tables}
    share = total / jobs
    return {str(table.qualified): max(1, min(jobs, round(table.total_bytes / share))) for table in tables}


@dataclass(frozen=True)
class _Task:
    """A table load (the caller's) or a post-data statement, for one scheduler."""

    run: Callable[[psycopg.Connection], object]
    key: str
    after: frozenset[str]
    exclusive_locks: frozenset[str]
    shared_locks: frozenset[str] = frozenset()

    def conflicts_with(self, other: _Task) -> bool:
        return bool(
            self.exclusive_locks & (other.exclusive_locks | other.shared_locks)
            or other.exclusive_locks & self.shared_locks
        )


def load_and_apply_post_data(
    dsn: str,
    schema: DatabaseSchema,
    load: LoadPart,
    *,
    tables: Sequence[TableDef] | None = None,
    jobs: int = 2,
    parts: Mapping[str, int] | None = None,
    report: ApplyReport | None = None,
    analyze_tables: bool = True,
) -> ApplyReport:
    """Load every table with ``load(conn, part)`` and build post-data, all on one pool of
    ``jobs`` connections, each statement as soon as what it needs is there.

    A table's indexes start right after its own load (while bigger tables are still loading),
    a table's index builds overlap each other (keys are built as plain unique indexes, then
    attached), foreign keys wait for both tables' keys, and ``ANALYZE`` of a table follows its
    load (or its indexes, when one indexes an expression). With a biggest-first order this keeps
    every connection busy until the end instead of leaving all but one idle behind the largest
    table, then behind its indexes.

    ``load`` runs on a pool connection (autocommit) and typically calls
    :func:`lifeboat.pg.copystream.copy_in` with ``freeze=part.whole`` (the parts of a split
    table load concurrently, so only a whole table may be truncated and frozen). ``parts`` maps
    ``"schema.table"`` to a number of parts (default: one each; :func:`parts_per_table`
    proposes a split). ``tables`` defaults to all of the schema's; those left out get no load.
    """
    report = report if report is not None else ApplyReport()
    with connect(dsn) as conn:
        roles = existing_roles(conn)
    to_load = sorted(tables if tables is not None else schema.tables, key=lambda table: -table.total_bytes)
    counts = dict(parts) if parts is not None else {}
    tasks = [_load_task(load, TablePart(table, index, count)) for table in to_load
             for count in [counts.get(str(table.qualified), 1)] for index in range(count)]  # fmt: skip
    statements = _filter_by_roles(post_data_statements(schema), roles, report)
    early, late = _analyze_tasks(schema, statements) if analyze_tables else ([], [])
    tasks += early  # the scheduler starts the first ready task: these before any index build
    post_data = [_statement_task(statement, dsn) for statement in statements]
    tables_by_name = {str(table.qualified): table for table in schema.tables}
    tasks += longest_chain_first(post_data, estimated_seconds(tables_by_name, post_data))
    tasks += late

    def open_connection() -> psycopg.Connection:
        conn = connect(dsn)
        for setting in restore_session_sql(jobs):
            conn.execute(setting)
        return conn

    def run(conn: psycopg.Connection, task: _Task) -> None:
        started = time.monotonic()
        report.started.setdefault(task.key, started)
        task.run(conn)
        report.seconds[task.key] = report.seconds.get(task.key, 0.0) + time.monotonic() - started

    run_on_connections(
        open_connection,
        tasks,
        run,
        jobs,
        conflicts=_Task.conflicts_with,
        key=lambda task: task.key,
        after=lambda task: task.after,
    )
    return report


def _load_task(load: LoadPart, part: TablePart) -> _Task:
    """Parts of one table share its load key; they may run together, a whole load runs alone."""
    name = frozenset({str(part.table.qualified)})
    if part.whole:
        return _Task(_bound(load, part), load_key(part.table), frozenset(), name)
    return _Task(_bound(load, part), load_key(part.table), frozenset(), frozenset(), shared_locks=name)


def _bound(
    function: Callable[[psycopg.Connection, T], object], argument: T
) -> Callable[[psycopg.Connection], object]:
    return lambda conn: function(conn, argument)


def _statement_task(statement: Statement, dsn: str) -> _Task:
    return _Task(
        lambda conn: execute_statement(conn, statement, dsn),
        statement.key,
        statement.after,
        statement.exclusive_locks,
        statement.shared_locks,
    )


def _analyze_tasks(
    schema: DatabaseSchema, statements: Sequence[Statement]
) -> tuple[list[_Task], list[_Task]]:
    """ANALYZE of each table, as (tasks right after a load, tasks after a table's post-data).

    A table with an expression index is analyzed after it (``ANALYZE`` gathers statistics for
    index expressions too). Any other is analyzed as soon as its data is in: its ``ANALYZE``
    conflicts with its index builds and foreign keys anyway, and done early (while a bigger table
    still loads on another connection) it no longer ends the restore alone on one connection.
    """
    early, late = [], []
    for table in sorted(schema.tables, key=lambda table: -table.total_bytes):
        name = str(table.qualified)
        statement = Statement(sql.SQL("ANALYZE {}").format(table.qualified.identifier()))
        key = f"analyze:{name}"
        if not _indexes_expressions(table):
            early.append(
                _Task(
                    _bound(execute_statement, statement), key, frozenset({load_key(table)}), frozenset({name})
                )
            )
            continue
        own = frozenset(s.key for s in statements if name in (s.shared_locks | s.exclusive_locks) and s.key)
        late.append(
            _Task(_bound(execute_statement, statement), key, own | {load_key(table)}, frozenset({name}))
        )
    return early, late


def _indexes_expressions(table: TableDef) -> bool:
    """Whether one of the table's indexes (an exclusion constraint's included) has an expression;
    an exclusion constraint captured without its index definition (as captures are) counts as one."""
    definitions = [index.definition for index in table.indexes]
    for constraint in table.constraints:
        if constraint.kind == "x" and constraint.index_definition is None:
            return True
        if constraint.kind == "x" and constraint.index_definition is not None:
            definitions.append(constraint.index_definition)
    return any(index_has_expressions(definition) for definition in definitions)


def _autovacuum_pausable(tables: Sequence[TableDef]) -> list[TableDef]:
    """Tables whose source left ``autovacuum_enabled`` at its default, for the table and its TOAST
    table (one that sets either keeps its own values throughout, so its options come back in their
    captured order)."""
    own = ("autovacuum_enabled=", "toast.autovacuum_enabled=")
    return [t for t in tables if not any(o.startswith(own) for o in t.options)]


def pause_autovacuum(conn: psycopg.Connection, tables: Sequence[TableDef]) -> None:
    """Keep autovacuum off ``tables`` (and their TOAST tables) while they load and get indexed.

    A worker that wakes up on a freshly loaded table duplicates work the restore does anyway
    (``ANALYZE``; a vacuum of frozen pages) on cores the restore needs, and its lock makes an
    index build or ``ANALYZE`` wait ``deadlock_timeout`` before it is cancelled. Undone by
    :func:`resume_autovacuum`. Tables that set ``autovacuum_enabled`` themselves are left alone.
    """
    off = sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)")
    with conn.transaction():
        for table in _autovacuum_pausable(tables):
            _execute(conn, Statement(off.format(table.qualified.identifier())))


def resume_autovacuum(conn: psycopg.Connection, tables: Sequence[TableDef]) -> None:
    """Undo :func:`pause_autovacuum`: back to the defaults, as captured."""
    reset = sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled, toast.autovacuum_enabled)")
    with conn.transaction():
        for table in _autovacuum_pausable(tables):
            _execute(conn, Statement(reset.format(table.qualified.identifier())))


def apply_sequence_values(conn: psycopg.Connection, schema: DatabaseSchema) -> None:
    """``setval`` every sequence to its captured value (and ``is_called``)."""
    for statement in sequence_value_statements(schema.sequences):
        _execute(conn, statement)


def analyze(dsn: str, tables: Sequence[TableDef], *, jobs: int = 2) -> None:
    """ANALYZE the restored tables on ``jobs`` connections, biggest first, so the planner has
    statistics before the application's first query."""
    ordered = sorted(tables, key=lambda table: -table.total_bytes)

    def run(conn: psycopg.Connection, table: TableDef) -> None:
        _execute(conn, Statement(sql.SQL("ANALYZE {}").format(table.qualified.identifier())))

    run_on_connections(lambda: connect(dsn), ordered, run, jobs)


def check_target_version(conn: psycopg.Connection, schema: DatabaseSchema) -> list[str]:
    """Warnings about features the source used that the target major may lack."""
    target = server_info(conn)
    warnings = []
    uses_nulls_not_distinct = any(
        "NULLS NOT DISTINCT" in constraint.definition
        for table in schema.tables
        for constraint in table.constraints
    )
    if uses_nulls_not_distinct and target.major < 15:
        warnings.append("UNIQUE NULLS NOT DISTINCT needs PostgreSQL 15 or later on the target")
    columns = [column for table in schema.tables for column in table.columns]
    if any(column.generated == "v" for column in columns) and target.major < 18:
        warnings.append("virtual generated columns need PostgreSQL 18 or later on the target")
    if any(column.not_null_name for column in columns) and target.major < 18:
        warnings.append("NOT NULL constraint names are not kept on PostgreSQL older than 18")
    return warnings
