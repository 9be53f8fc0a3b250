"""Schema-level checks: revision → release, the tables/columns/FKs that revision expects, search_path."""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta import revisions
from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, finding
from lifeboat.letta.schema_shape import ForeignKey, capture_foreign_keys, expected_shape

_SEARCH_PATH_SETTINGS_SQL = """
SELECT s.setdatabase <> 0 AS for_database, s.setrole <> 0 AS for_role, substr(cfg, length('search_path=') + 1)
FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS cfg
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
  AND s.setrole IN (0, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s))
  AND cfg LIKE 'search_path=%%'
"""


@check(
    "schema",
    "Schema revision, tables, columns and constraints",
    codes=(
        "schema.revision_missing",
        "schema.revision_unknown",
        "schema.revision_other",
        "schema.search_path",
        "schema.vector_extension",
        "schema.missing_table",
        "schema.missing_column",
        "schema.column_type",
        "schema.extra_table",
        "schema.extra_column",
        "schema.missing_foreign_key",
    ),
)
def check_schema(ctx: CheckContext) -> Iterator[Finding]:
    yield from _revision_findings(ctx)
    yield from _search_path_findings(ctx)
    if ctx.notes.get("vector_schema") is None:
        yield finding(
            Severity.ERROR,
            "schema.vector_extension",
            "-",
            "the pgvector extension is not installed: the embedding columns cannot exist or be read",
            "CREATE EXTENSION vector WITH SCHEMA <letta schema> (as a superuser) before loading data",
        )
    expected = expected_shape(ctx.revision)
    if expected is not None:
        yield from _column_findings(ctx, expected.tables)
        yield from _foreign_key_findings(ctx, expected.foreign_keys)


def _revision_findings(ctx: CheckContext) -> Iterator[Finding]:
    if "alembic_version" not in ctx.columns:
        yield finding(
            Severity.ERROR,
            "schema.revision_missing",
            "alembic_version",
            "no alembic_version table: the schema was not created by Letta's migrations "
            "(Letta's startup `alembic upgrade head` would try to replay everything and fail)",
            "restore the schema from a migrated database, or `alembic stamp <revision>` if it is known to match",
        )
        return
    rows = ctx.rows("SELECT version_num FROM alembic_version ORDER BY 1")
    if len(rows) != 1:
        yield finding(
            Severity.ERROR,
            "schema.revision_missing",
            "alembic_version",
            f"alembic_version holds {len(rows)} rows (expected exactly 1): {[r[0] for r in rows]}",
            "keep the single row of the revision the schema was migrated to",
        )
        return
    revision = rows[0][0]
    if not revisions.is_known(revision):
        yield finding(
            Severity.ERROR,
            "schema.revision_unknown",
            "alembic_version",
            f"alembic revision {revision} is not the head of any Letta release lifeboat knows",
            "upgrade lifeboat, or migrate the database to a released Letta revision",
        )
    elif expected_shape(revision) is None:
        yield finding(
            Severity.INFO,
            "schema.revision_other",
            "alembic_version",
            f"alembic revision {revision} = Letta {revisions.release_label(revision)}; lifeboat has no "
            "schema record of it, so the table/column comparison was skipped",
        )


def _effective_search_path(ctx: CheckContext, role: str) -> list[str]:
    """search_path a new session of ``role`` gets: db+role setting > role > database > built-in default."""
    settings = {(bool(db), bool(rl)): value for db, rl, value in ctx.rows(_SEARCH_PATH_SETTINGS_SQL, (role,))}
    for key in ((True, True), (False, True), (True, False)):
        if key in settings:
            value = settings[key]
            break
    else:
        value = str(ctx.scalar("SELECT boot_val FROM pg_catalog.pg_settings WHERE name = 'search_path'"))
    entries = [part.strip().strip('"') for part in value.split(",")]
    return [role if entry == "$user" else entry for entry in entries if entry]


def _search_path_findings(ctx: CheckContext) -> Iterator[Finding]:
    if "agents" not in ctx.columns:
        return
    owner = str(
        ctx.scalar("SELECT pg_get_userbyid(relowner) FROM pg_catalog.pg_class WHERE oid = 'agents'::regclass")
    )
    path = _effective_search_path(ctx, owner)
    if ctx.schema not in path:
        yield finding(
            Severity.ERROR,
            "schema.search_path",
            "-",
            f"Letta's tables live in schema {ctx.schema!r} but a new session of their owner {owner!r} "
            f"gets search_path {', '.join(path) or '(empty)'}: the server would see no tables",
            f'ALTER DATABASE "<db>" SET search_path TO "{ctx.schema}" (pg_dump without --create drops this setting)',
        )


def _column_findings(ctx: CheckContext, expected: dict[str, dict[str, str]]) -> Iterator[Finding]:
    missing_tables = sorted(set(expected) - set(ctx.columns))
    if missing_tables:
        yield Finding(
            severity=Severity.ERROR,
            check="schema.missing_table",
            table="-",
            ids=missing_tables,
            count=len(missing_tables),
            message=f"{len(missing_tables)} table(s) of revision {ctx.revision} are missing: {', '.join(missing_tables)}",
            fix="restore the schema (pre-data DDL) of a database at this revision",
        )
    extra_tables = sorted(set(ctx.columns) - set(expected))
    if extra_tables:
        yield Finding(
            severity=Severity.INFO,
            check="schema.extra_table",
            table="-",
            ids=extra_tables,
            count=len(extra_tables),
            message=f"tables Letta does not define: {', '.join(extra_tables)}",
        )
    for table in sorted(set(expected) & set(ctx.columns)):
        yield from _table_column_findings(table, expected[table], ctx.columns[table])


def _table_column_findings(table: str, expected: dict[str, str], actual: dict[str, str]) -> Iterator[Finding]:
    missing = [column for column in expected if column not in actual]
    if missing:
        yield Finding(
            severity=Severity.ERROR,
            check="schema.missing_column",
            table=table,
            ids=missing,
            count=len(missing),
            message=f"{table} lacks column(s) {', '.join(missing)}",
            fix="the schema is not at the recorded revision; restore its DDL or re-run the migrations",
        )
    wrong = [
        f"{c}: {actual[c]} (expected {t})" for c, t in expected.items() if c in actual and actual[c] != t
    ]
    if wrong:
        yield Finding(
            severity=Severity.ERROR,
            check="schema.column_type",
            table=table,
            ids=[entry.split(":")[0] for entry in wrong],
            count=len(wrong),
            message=f"{table} column type(s) differ: {'; '.join(wrong)}",
            fix="restore the table's DDL from a database at this revision",
        )
    extra = [column for column in actual if column not in expected]
    if extra:
        yield Finding(
            severity=Severity.INFO,
            check="schema.extra_column",
            table=table,
            ids=extra,
            count=len(extra),
            message=f"{table} has column(s) Letta does not define: {', '.join(extra)}",
        )


def _fk_signature(fk: ForeignKey) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    return (fk.table, fk.columns, fk.ref_table, fk.ref_columns)


def _foreign_key_findings(ctx: CheckContext, expected: tuple[ForeignKey, ...]) -> Iterator[Finding]:
    present = {_fk_signature(fk) for fk in capture_foreign_keys(ctx.conn, ctx.schema)}
    missing = [fk for fk in expected if _fk_signature(fk) not in present and fk.table in ctx.columns]
    by_table: dict[str, list[ForeignKey]] = {}
    for fk in missing:
        by_table.setdefault(fk.table, []).append(fk)
    for table, fks in sorted(by_table.items()):
        described = [f"({', '.join(fk.columns)}) → {fk.ref_table}" for fk in fks]
        yield Finding(
            severity=Severity.ERROR,
            check="schema.missing_foreign_key",
            table=table,
            ids=[fk.name for fk in fks],
            count=len(fks),
            message=f"{table} lacks foreign key(s) {'; '.join(described)}: nothing stops dangling references",
            fix="re-apply the post-data DDL (constraints) of the backup; the fk check tells whether data violates them",
        )
