"""Doctor checks of the PostgreSQL database: version, privileges, pgvector, Letta's revision, size."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from lifeboat.errors import LifeboatError
from lifeboat.letta import revisions
from lifeboat.letta.locate import find_letta_schema
from lifeboat.letta.schema_records import schema_record
from lifeboat.ops.doctor.report import DoctorInputs, Run, Status
from lifeboat.pg import catalog
from lifeboat.pg.connect import connect, describe_target, one_line

MIN_PG_MAJOR = 15  # Letta's migrations need UNIQUE NULLS NOT DISTINCT
TESTED_PG_MAJORS = (15, 16, 17, 18)


_DATABASE_CHECKS = (
    "database.version",
    "database.backup_privileges",
    "database.restore_privileges",
    "database.pgvector",
    "letta.revision",
)


def database_checks(run: Run, inputs: DoctorInputs) -> None:
    if not inputs.dsn:
        run.add(
            "database",
            Status.FAIL,
            "no database configured",
            "set LETTA_PG_URI (as the Letta server does) or pass --db",
        )
        return
    target = describe_target(inputs.dsn)
    try:
        conn = connect(inputs.dsn)
    except LifeboatError as exc:
        run.add(
            "database", Status.FAIL, str(exc), "check host, port, user and password in LETTA_PG_URI / --db"
        )
        for name in _DATABASE_CHECKS:
            run.add(name, Status.SKIP, "database unreachable")
        return
    with conn:
        run.add("database", Status.OK, f"connected to {target}")
        _guard(run, "database.version", lambda: _version(run, conn))
        schema = find_letta_schema(conn)
        _guard(run, "database.backup_privileges", lambda: _backup_privileges(run, conn, schema))
        _guard(run, "database.restore_privileges", lambda: _restore_privileges(run, conn, inputs))
        _guard(run, "database.pgvector", lambda: _pgvector(run, conn, schema))
        _guard(run, "letta.revision", lambda: _revision(run, conn, schema))
        _guard(run, "database.size", lambda: _database_size(run, conn))


def _guard(run: Run, name: str, check: Callable[[], None]) -> None:
    """Run one check; an unexpected database error becomes that check's failure, not a crash."""
    try:
        check()
    except (psycopg.Error, LifeboatError) as exc:
        run.add(name, Status.FAIL, f"could not check: {one_line(exc)}")


def _version(run: Run, conn: psycopg.Connection) -> None:
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone()
    assert row is not None
    major, version = int(row[0]) // 10000, str(row[1]).split()[0]
    if major < MIN_PG_MAJOR:
        run.add(
            "database.version",
            Status.FAIL,
            f"PostgreSQL {version}: Letta needs 15 or newer",
            "upgrade PostgreSQL (Letta's images use pgvector/pgvector:0.8.1-pg15)",
            version=version,
        )
    elif major not in TESTED_PG_MAJORS:
        run.add(
            "database.version",
            Status.WARN,
            f"PostgreSQL {version} is newer than lifeboat was tested with",
            version=version,
        )
    else:
        run.add("database.version", Status.OK, f"PostgreSQL {version}", version=version)


def _backup_privileges(run: Run, conn: psycopg.Connection, schema: str | None) -> None:
    if schema is None:
        run.add("database.backup_privileges", Status.SKIP, "no Letta schema to read")
        return
    row = conn.execute("SELECT has_schema_privilege(%s, 'USAGE'), current_user", (schema,)).fetchone()
    assert row is not None
    usage, user = bool(row[0]), str(row[1])
    unreadable = [] if not usage else catalog.unreadable_relations(conn, schema)
    if usage and not unreadable:
        run.add(
            "database.backup_privileges", Status.OK, f"role {user} can read every table of schema {schema}"
        )
        return
    what = (
        f"no USAGE on schema {schema}"
        if not usage
        else f"cannot read {len(unreadable)} table(s): {', '.join(unreadable[:5])}"
    )
    run.add(
        "database.backup_privileges",
        Status.FAIL,
        f"role {user} {what}",
        f"back up as the owner of schema {schema} (role letta) or GRANT USAGE ON SCHEMA {schema}, "
        f"SELECT ON ALL TABLES IN SCHEMA {schema}, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {user}",
        unreadable=unreadable,
    )


_ROLE_SQL = """
SELECT current_user, r.rolsuper, r.rolcreatedb,
       coalesce((SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = 'vector'), false),
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')
FROM pg_roles r WHERE r.rolname = current_user
"""


def _restore_privileges(run: Run, conn: psycopg.Connection, inputs: DoctorInputs) -> None:
    explicit = inputs.target_dsn is not None
    target_conn = connect(inputs.target_dsn) if explicit and inputs.target_dsn else conn
    try:
        row = target_conn.execute(_ROLE_SQL).fetchone()
    finally:
        if target_conn is not conn:
            target_conn.close()
    assert row is not None
    user, superuser, createdb, trusted, available = (
        str(row[0]),
        bool(row[1]),
        bool(row[2]),
        bool(row[3]),
        bool(row[4]),
    )
    missing = []
    if not (superuser or createdb):
        missing.append("CREATEDB")
    if not available:
        missing.append("the pgvector extension installed on the server")
    elif not (superuser or trusted):
        missing.append(
            "the right to CREATE EXTENSION vector (a superuser: pgvector is not a trusted extension)"
        )
    if not missing:
        run.add(
            "database.restore_privileges",
            Status.OK,
            f"role {user} can create databases and the vector extension",
        )
        return
    run.add(
        "database.restore_privileges",
        Status.FAIL if explicit else Status.WARN,
        f"role {user} lacks {' and '.join(missing)}: a full restore or drill as this role would fail",
        "restore with an admin role: lifeboat restore --target postgresql://postgres@HOST/letta_restored "
        "(doctor --target checks that DSN)",
        missing=missing,
    )


def _pgvector(run: Run, conn: psycopg.Connection, schema: str | None) -> None:
    installed = catalog.installed_extension(conn, "vector")
    wanted = schema or "letta"
    if installed is None:
        run.add(
            "database.pgvector",
            Status.FAIL,
            "the vector extension (pgvector) is not installed in this database",
            f"as a superuser: CREATE EXTENSION vector WITH SCHEMA {wanted} (Letta's init.sql does this)",
        )
    elif schema is not None and installed.schema != schema:
        run.add(
            "database.pgvector",
            Status.FAIL,
            f"pgvector {installed.version} is in schema {installed.schema}, not in Letta's schema {schema}",
            f"as a superuser: ALTER EXTENSION vector SET SCHEMA {schema}",
            schema=installed.schema,
            version=installed.version,
        )
    else:
        run.add(
            "database.pgvector",
            Status.OK,
            f"pgvector {installed.version} in schema {installed.schema}",
            schema=installed.schema,
            version=installed.version,
        )


def _revision(run: Run, conn: psycopg.Connection, schema: str | None) -> None:
    if schema is None:
        run.add(
            "letta.revision",
            Status.FAIL,
            "no Letta schema in this database (no agents/messages/block tables)",
            "point --db / LETTA_PG_URI at the Letta database",
        )
        return
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(schema))
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    revision = None if row is None else str(row[0])
    if revision is None:
        run.add(
            "letta.revision",
            Status.FAIL,
            f"schema {schema} has no alembic_version: not migrated by Letta's alembic",
            "run Letta's `alembic upgrade head` (the server image does at start) or `alembic stamp head`",
        )
    elif not revisions.is_known(revision):
        newest = revisions.RELEASES[-1]
        run.add(
            "letta.revision",
            Status.FAIL,
            f"alembic revision {revision} is not a Letta release lifeboat knows (newest known: {newest.head})",
            "upgrade lifeboat to a version that knows this Letta release, or check the database is Letta's",
            revision=revision,
        )
    else:
        run.revision = revision
        label = revisions.release_label(revision)
        recorded = schema_record(revision) is not None
        older = revision != revisions.HEAD_0_16_8
        note = (
            "; older than 0.16.8 — rehearse the upgrade with `lifeboat drill --upgrade-to 0.16.8`, "
            "restore a backup of it with `lifeboat restore --upgrade head`"
            if older
            else ""
        )
        run.add(
            "letta.revision",
            Status.OK,
            f"alembic {revision} = Letta {label}"
            + ("" if recorded else " (no schema record: verify skips the table comparison)")
            + note,
            revision=revision,
            release=label,
            schema_record=recorded,
            upgrade_available=older,
        )


def _database_size(run: Run, conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    run.database_bytes = int(row[0]) if row else None
    try:
        with conn.transaction():
            setting = conn.execute("SELECT current_setting('data_directory')").fetchone()
        run.data_directory = str(setting[0]) if setting else None
    except psycopg.Error:
        run.data_directory = None  # needs superuser or pg_read_all_settings
