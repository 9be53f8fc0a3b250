"""`lifeboat import FILE.af`: validate an agent file completely, then write it in ONE transaction.

Order of work:

1. read at most ``max_bytes`` and validate the file without a database (every problem listed);
2. open one transaction on the target, read what the plan depends on (alembic revision,
   organization, same-named tools/folders/MCP servers/identities) and check it;
3. plan the rows (:func:`lifeboat.letta.agent_file_import.plan_import`) and execute them;
4. commit — or roll back for ``--dry-run``, which therefore also proves that every constraint
   of the target database accepts the rows.

Any problem before step 3 raises :class:`ValidationFailed`; any database error rolls the whole
import back. Either way nothing is left behind except consumed ``message_seq_id`` values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from psycopg import sql
from psycopg.types.json import Json

from lifeboat.errors import UsageError
from lifeboat.letta.agent_file import AgentFile
from lifeboat.letta.agent_file_import import plan_import
from lifeboat.letta.agent_file_import_plan import ExistingTool, ImportPlan, Options, Target, Vector, Write
from lifeboat.letta.agent_file_secrets import encryption_key
from lifeboat.letta.agent_file_validate import DEFAULT_LIMITS, Limits, fail, path_problem, validate_bytes
from lifeboat.letta.locate import enter_letta_schema
from lifeboat.letta.revisions import HEAD_0_16_8, release_label
from lifeboat.pg import catalog
from lifeboat.pg.connect import connection, database_errors

DEFAULT_ORG = "org-00000000-0000-4000-8000-000000000000"
DEFAULT_USER = "user-00000000-0000-4000-8000-000000000000"

# PostgreSQL enum columns (member names stored upper case) need an explicit cast.
_CASTS = {
    ("sources", "vector_db_provider"): "vectordbprovider",
    ("archives", "vector_db_provider"): "vectordbprovider",
}


@dataclass
class ImportReport:
    file: str
    dry_run: bool
    agent_ids: list[str]
    id_map: dict[str, str]
    reused: dict[str, str]
    rows: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    organization_id: str = DEFAULT_ORG
    custom_tools: list[dict[str, Any]] = field(default_factory=list)  # code the import installs


def read_limited(source: Path | BinaryIO, max_bytes: int) -> bytes:
    """Read the file, refusing it as soon as it exceeds ``max_bytes`` (no unbounded reads)."""
    try:
        if isinstance(source, Path):
            if source.is_dir():
                raise UsageError(f"{source} is a directory")
            with source.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        else:
            data = source.read(max_bytes + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise fail([f"file is larger than {max_bytes:,} bytes (raise the limit with --max-bytes)"])
    return data


def load_target(
    conn: psycopg.Connection, doc: AgentFile, organization_id: str | None
) -> tuple[Target, list[str]]:
    """Facts about the destination the plan depends on, and the problems they reveal."""
    problems: list[str] = []
    revision_rows = _fetch(conn, "SELECT version_num FROM alembic_version")
    revision = revision_rows[0][0] if revision_rows else None
    if revision != HEAD_0_16_8:
        problems.append(
            f"target database is at alembic revision {revision or 'none'} ({release_label(revision)});"
            f" lifeboat writes Letta 0.16.8 rows ({HEAD_0_16_8}) only"
        )
    org = organization_id or DEFAULT_ORG
    if not _fetch(conn, "SELECT 1 FROM organizations WHERE id = %s", [org]):
        problems.append(f"organization {org} does not exist in the target database")
    user = _actor(conn, org)
    tools = {
        row[0]: ExistingTool(row[1], row[2], row[3], row[4])
        for row in _fetch(
            conn,
            "SELECT name, id, tool_type, source_code, json_schema FROM tools WHERE organization_id = %s AND name = ANY(%s)",
            [org, [t.name for t in doc.tools]],
        )
    }
    sources = {
        row[0]
        for row in _fetch(
            conn,
            "SELECT name FROM sources WHERE organization_id = %s AND name = ANY(%s)",
            [org, [s.name for s in doc.sources]],
        )
    }
    servers = {
        row[0]: row[1]
        for row in _fetch(
            conn,
            "SELECT server_name, id FROM mcp_server WHERE organization_id = %s AND server_name = ANY(%s)",
            [org, [s.server_name for s in doc.mcp_servers]],
        )
    }
    identities = {
        (row[0], row[1]): row[2]
        for row in _fetch(
            conn, "SELECT identifier_key, project_id, id FROM identities WHERE organization_id = %s", [org]
        )
    }
    target = Target(org, user, tools, sources, servers, identities, encryption_key())
    return target, problems


def _actor(conn: psycopg.Connection, org: str) -> str | None:
    """The user Letta would act as: the default user in the default org, else the org's first user."""
    rows = _fetch(
        conn,
        "SELECT id FROM users WHERE organization_id = %s AND NOT is_deleted ORDER BY (id = %s) DESC, created_at, id LIMIT 1",
        [org, DEFAULT_USER],
    )
    return rows[0][0] if rows else None


def _fetch(conn: psycopg.Connection, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def _adapt(value: Any, json_column: bool) -> Any:
    """Python value → parameter. JSON columns get JSON text as SQLAlchemy writes it for Letta:
    ``json.dumps`` defaults, and an explicit None stored as the JSON ``null`` (not SQL NULL)."""
    if isinstance(value, dict | list) or (json_column and value is None):
        return Json(value)
    return value


def json_columns(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """(table, column) of every json/jsonb column of the Letta schema."""
    schema = catalog.current_schema(conn)
    columns = catalog.columns(conn, schema) if schema else {}
    return {(table, c.name) for table, cols in columns.items() for c in cols if c.type in ("json", "jsonb")}


def _placeholder(table: str, column: str, value: Any) -> sql.Composable:
    if isinstance(value, Vector):
        return sql.SQL("%s::vector")
    cast = _CASTS.get((table, column))
    return sql.SQL("%s::{}").format(sql.Identifier(cast)) if cast else sql.SQL("%s")


def _statement(write: Write) -> sql.Composed:
    columns = list(write.values)
    if write.update_id is not None:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), _placeholder(write.table, c, write.values[c]))
            for c in columns
        )
        return sql.SQL("UPDATE {} SET {} WHERE id = %s").format(sql.Identifier(write.table), assignments)
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(write.table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(_placeholder(write.table, c, write.values[c]) for c in columns),
    )


def _batches(
    writes: Iterable[Write], json_cols: set[tuple[str, str]]
) -> Iterable[tuple[Write, list[list[Any]]]]:
    """Consecutive writes with the same statement shape, as (first write, parameter rows)."""
    current: Write | None = None
    key: tuple[Any, ...] = ()
    params: list[list[Any]] = []
    for write in writes:
        shape = (
            write.table,
            write.update_id is None,
            tuple(write.values),
            tuple(isinstance(v, Vector) for v in write.values.values()),
        )
        if current is not None and shape != key:
            yield current, params
            params = []
        if not params:
            current, key = write, shape
        row = [_adapt(v, (write.table, c) in json_cols) for c, v in write.values.items()]
        params.append(row + ([write.update_id] if write.update_id is not None else []))
    if current is not None and params:
        yield current, params


def apply_plan(conn: psycopg.Connection, plan: ImportPlan) -> None:
    """Execute the plan's writes in order (the caller owns the transaction)."""
    json_cols = json_columns(conn)
    with conn.cursor() as cur:
        for first, params in _batches(plan.writes, json_cols):
            cur.executemany(_statement(first), params)


def _gate_custom_tools(plan: ImportPlan, options: Options, dry_run: bool) -> None:
    """New code-bearing tools need ``allow_custom_tools``: a dry run lists them, an import refuses."""
    if not plan.custom_tools or options.allow_custom_tools:
        return
    listed = [f"{tool.describe()}: Letta would run it on its host" for tool in plan.custom_tools]
    if not dry_run:
        raise fail([*listed, "install code-bearing tools only with --allow-custom-tools"])
    plan.warnings += [f"{line} (the import needs --allow-custom-tools)" for line in listed]


def import_document(
    conn: psycopg.Connection,
    doc: AgentFile,
    *,
    organization_id: str | None = None,
    options: Options | None = None,
    dry_run: bool = False,
) -> tuple[ImportPlan, Target]:
    """Import a validated document inside one transaction on ``conn`` (autocommit connection).

    The seam other operations use (e.g. importing into a throwaway database).
    """
    options = options or Options()
    with conn.transaction() as tx:
        enter_letta_schema(conn)  # the database's own search_path may not name it
        target, problems = load_target(conn, doc, organization_id)
        if options.name is not None:
            problem = path_problem(options.name, what="--name")
            if problem:
                problems.append(problem)
        if problems:
            raise fail(problems)
        plan = plan_import(doc, target, options)
        _gate_custom_tools(plan, options, dry_run)
        apply_plan(conn, plan)
        if dry_run:
            raise psycopg.Rollback(tx)
    return plan, target


def import_agent_file(
    source: Path | BinaryIO,
    dsn: str,
    *,
    organization_id: str | None = None,
    options: Options | None = None,
    dry_run: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportReport:
    """Validate ``source`` and import it into the Letta database at ``dsn``."""
    data = read_limited(source, limits.max_bytes)
    doc = validate_bytes(data, limits)
    with connection(dsn) as conn, database_errors("import failed, nothing was written"):
        plan, target = import_document(
            conn, doc, organization_id=organization_id, options=options, dry_run=dry_run
        )
    return ImportReport(
        file=str(source) if isinstance(source, Path) else "<stdin>",
        dry_run=dry_run,
        agent_ids=plan.agent_ids,
        id_map=plan.id_map,
        reused=plan.reused,
        rows=plan.counts(),
        warnings=plan.warnings,
        organization_id=target.organization_id,
        custom_tools=[asdict(tool) for tool in plan.custom_tools],
    )
