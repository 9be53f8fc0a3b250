"""``lifeboat doctor``: is this machine ready to back up and restore this Letta server?

One line per check, each with a fix hint when it is not ok. Checks never raise: a problem is a
``fail`` (backups or restores would not work) or a ``warn`` (they would, but look), and checks
that depend on an unreachable resource are ``skip``. The command exits 3 when any check fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field

from lifeboat.errors import LifeboatError
from lifeboat.letta import revisions
from lifeboat.letta.locate import find_letta_schema
from lifeboat.letta.schema_records import schema_record
from lifeboat.pg.connect import connect, describe_target, one_line
from lifeboat.settings import RedisTarget

REPORT_FORMAT = "lifeboat.doctor/1"
MIN_PG_MAJOR = 15  # Letta's migrations need UNIQUE NULLS NOT DISTINCT
TESTED_PG_MAJORS = (15, 16, 17, 18)
RESTORE_SIZE_FACTOR = 1.5  # COPY text -> heap + indexes, when only the snapshot's size is known


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class DoctorCheck(BaseModel):
    name: str
    status: Status
    message: str
    hint: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class DoctorReport(BaseModel):
    """What ``lifeboat doctor --json`` prints (docs/JSON.md)."""

    format: str = REPORT_FORMAT
    ok: bool = Field(description="no check failed")
    summary: dict[str, int]
    checks: list[DoctorCheck]


@dataclass
class DoctorInputs:
    """Where to look. ``target_dsn`` is the admin DSN restores would use (None: the database DSN)."""

    dsn: str | None
    repository: str | None
    passphrase: str | None = None
    redis: RedisTarget | None = None
    target_dsn: str | None = None
    max_age: timedelta = timedelta(hours=26)
    scratch_dir: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    server_url: str | None = None  # the running Letta server, to compare its version with the schema


class _Run:
    """Collects checks; remembers facts later checks need."""

    def __init__(self) -> None:
        self.checks: list[DoctorCheck] = []
        self.database_bytes: int | None = None
        self.snapshot_bytes: int | None = None
        self.data_directory: str | None = None
        self.revision: str | None = None

    def add(self, name: str, status: Status, message: str, hint: str | None = None, **details: Any) -> None:
        self.checks.append(DoctorCheck(name=name, status=status, message=message, hint=hint, details=details))


def run_doctor(inputs: DoctorInputs, *, now: datetime | None = None) -> DoctorReport:
    run = _Run()
    if inputs.sources:
        described = "; ".join(f"{name} from {source}" for name, source in inputs.sources.items())
        run.add("settings", Status.OK, described, **inputs.sources)
    _database_checks(run, inputs)
    _server_check(run, inputs.server_url)
    _redis_check(run, inputs.redis)
    _repository_checks(run, inputs, now or datetime.now(UTC))
    _disk_check(run, inputs)
    summary = {status.value: sum(1 for c in run.checks if c.status is status) for status in Status}
    return DoctorReport(ok=summary["fail"] == 0, summary=summary, checks=run.checks)


# -- database ------------------------------------------------------------------------------------


_DATABASE_CHECKS = (
    "database.version",
    "database.backup_privileges",
    "database.restore_privileges",
    "database.pgvector",
    "letta.revision",
)


def _database_checks(run: _Run, inputs: DoctorInputs) -> None:
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


def _guard(run: _Run, name: str, check: Callable[[], None]) -> None:
    """Run one check; an unexpected database error becomes that check's failure, not a crash."""
    try:
        check()
    except (psycopg.Error, LifeboatError) as exc:
        run.add(name, Status.FAIL, f"could not check: {one_line(exc)}")


def _version(run: _Run, conn: psycopg.Connection) -> None:
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


_UNREADABLE_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'S')
  AND NOT (CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT')
                ELSE has_table_privilege(c.oid, 'SELECT') END)
ORDER BY 1
"""


def _backup_privileges(run: _Run, conn: psycopg.Connection, schema: str | None) -> None:
    if schema is None:
        run.add("database.backup_privileges", Status.SKIP, "no Letta schema to read")
        return
    row = conn.execute("SELECT has_schema_privilege(%s, 'USAGE'), current_user", (schema,)).fetchone()
    assert row is not None
    usage, user = bool(row[0]), str(row[1])
    unreadable = [] if not usage else [r[0] for r in conn.execute(_UNREADABLE_SQL, {"schema": schema})]
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


def _restore_privileges(run: _Run, conn: psycopg.Connection, inputs: DoctorInputs) -> None:
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


def _pgvector(run: _Run, conn: psycopg.Connection, schema: str | None) -> None:
    row = conn.execute(
        "SELECT n.nspname, e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'vector'"
    ).fetchone()
    wanted = schema or "letta"
    if row is None:
        run.add(
            "database.pgvector",
            Status.FAIL,
            "the vector extension (pgvector) is not installed in this database",
            f"as a superuser: CREATE EXTENSION vector WITH SCHEMA {wanted} (Letta's init.sql does this)",
        )
    elif schema is not None and row[0] != schema:
        run.add(
            "database.pgvector",
            Status.FAIL,
            f"pgvector {row[1]} is in schema {row[0]}, not in Letta's schema {schema}",
            f"as a superuser: ALTER EXTENSION vector SET SCHEMA {schema}",
            schema=row[0],
            version=row[1],
        )
    else:
        run.add(
            "database.pgvector",
            Status.OK,
            f"pgvector {row[1]} in schema {row[0]}",
            schema=row[0],
            version=row[1],
        )


def _revision(run: _Run, conn: psycopg.Connection, schema: str | None) -> None:
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


def _database_size(run: _Run, conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    run.database_bytes = int(row[0]) if row else None
    try:
        with conn.transaction():
            setting = conn.execute("SELECT current_setting('data_directory')").fetchone()
        run.data_directory = str(setting[0]) if setting else None
    except psycopg.Error:
        run.data_directory = None  # needs superuser or pg_read_all_settings


# -- the running server -----------------------------------------------------------------------------


def _server_check(run: _Run, url: str | None) -> None:
    """The server's own version (``GET /v1/health/``) against the database's revision."""
    if not url:
        run.add(
            "letta.server",
            Status.SKIP,
            "no server URL given (--server / LETTA_BASE_URL): version not compared",
        )
        return
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/v1/health/", timeout=5)
        version = str(response.json().get("version") or "")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        run.add("letta.server", Status.SKIP, f"Letta server at {url} not reachable: {one_line(exc)}", url=url)
        return
    if not version:
        run.add("letta.server", Status.WARN, f"{url}/v1/health/ reports no version", url=url)
        return
    expected = revisions.releases_for(run.revision)
    if run.revision is None or version in expected:
        run.add("letta.server", Status.OK, f"Letta server {version} at {url}", url=url, version=version)
        return
    schema = revisions.release_label(run.revision)
    run.add(
        "letta.server",
        Status.WARN,
        f"Letta server {version} at {url}, but the database's schema is Letta {schema} ({run.revision})",
        "a server newer than its schema has not run its migrations (the image runs `alembic upgrade head` at "
        "start); an older server on a newer schema is a downgrade — restore a backup taken with that release",
        url=url,
        version=version,
        schema_release=schema,
    )


# -- redis ------------------------------------------------------------------------------------------


def _redis_check(run: _Run, target: RedisTarget | None) -> None:
    if target is None:
        run.add(
            "redis",
            Status.SKIP,
            "LETTA_REDIS_HOST is not set: Letta runs without Redis (nothing to invalidate)",
        )
        return
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        host=target.host,
        port=target.port,
        socket_timeout=3,
        socket_connect_timeout=3,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        run.add(
            "redis",
            Status.FAIL,
            f"cannot reach Redis at {target.host}:{target.port}: {exc}",
            "start Redis or fix LETTA_REDIS_HOST/LETTA_REDIS_PORT; restores flush Letta's stale keys there",
        )
        return
    finally:
        client.close()
    run.add("redis", Status.OK, f"Redis at {target.host}:{target.port} answers")


# -- repository -------------------------------------------------------------------------------------


def _repository_checks(run: _Run, inputs: DoctorInputs, now: datetime) -> None:
    from lifeboat.repo.config import FORMAT_VERSION
    from lifeboat.repo.repository import Repository

    if not inputs.repository:
        run.add(
            "repository",
            Status.FAIL,
            "no repository configured",
            "pass --repo, set LIFEBOAT_REPOSITORY, or run lifeboat init",
        )
        run.add("repository.locks", Status.SKIP, "no repository")
        run.add("rpo", Status.SKIP, "no repository")
        return
    try:
        repo = Repository.open(inputs.repository, inputs.passphrase)
    except LifeboatError as exc:
        run.add("repository", Status.FAIL, str(exc), _repository_hint(exc))
        run.add("repository.locks", Status.SKIP, "repository not opened")
        run.add("rpo", Status.SKIP, "repository not opened")
        return
    mode = "encrypted" if repo.config.encrypted else "UNENCRYPTED"
    hint = None
    if not repo.config.encrypted:
        hint = "backups hold conversations and keys in clear: copy them into an encrypted repository"
    elif repo.config.version < FORMAT_VERSION:
        hint = "its config is not authenticated: run `lifeboat upgrade-repository` (docs/FORMAT.md §13)"
    run.add(
        "repository",
        Status.OK if hint is None else Status.WARN,
        f"{mode} repository {repo.backend.url}, format version {repo.config.version} (supported: {FORMAT_VERSION})",
        hint,
        version=repo.config.version,
        encrypted=repo.config.encrypted,
    )
    _locks_check(run, repo, now)
    _damaged_manifests_check(run, repo)
    _rpo_check(run, repo, inputs.max_age, now)


def _damaged_manifests_check(run: _Run, repo: Any) -> None:
    from lifeboat.repo.repair import damage_marks

    _, unreadable = repo.scan_snapshots()
    damaged = {**damage_marks(repo), **unreadable}
    if damaged:
        run.add(
            "repository.snapshots",
            Status.FAIL,
            f"{len(damaged)} snapshot(s) damaged (manifest unreadable, or marked by `repair snapshots`): "
            f"{', '.join(s[:8] for s in sorted(damaged)[:5])}",
            "run `lifeboat check`, then `lifeboat repair snapshots`",
            damaged=sorted(damaged),
        )


def _repository_hint(exc: LifeboatError) -> str:
    from lifeboat.errors import CorruptRepository, RepositoryNotFound, WrongPassphrase

    if isinstance(exc, WrongPassphrase):
        return "check LIFEBOAT_PASSWORD / --password-file (the passphrase given at `lifeboat init`)"
    if isinstance(exc, RepositoryNotFound):
        return "create it with `lifeboat init --repo ...` or fix --repo / LIFEBOAT_REPOSITORY"
    if isinstance(exc, CorruptRepository):
        return "run `lifeboat check` to see what is damaged"
    return "check that the storage is reachable (path, bucket, credentials)"


def _locks_check(run: _Run, repo: Any, now: datetime) -> None:
    locks = repo.list_locks()
    stale = [lock for lock in locks if lock.is_stale(now)]
    exclusive = [lock for lock in locks if lock.exclusive and lock not in stale]
    if stale:
        run.add(
            "repository.locks",
            Status.WARN,
            f"{len(stale)} stale lock(s): {'; '.join(lock.describe() for lock in stale[:3])}",
            "if no lifeboat process is running there, remove them with `lifeboat unlock`",
            locks=len(locks),
        )
    elif exclusive:
        run.add(
            "repository.locks",
            Status.WARN,
            f"locked exclusively: {exclusive[0].describe()} (a prune is running; backups will wait or fail)",
            "wait for it to finish; if that process is gone, `lifeboat unlock`",
            locks=len(locks),
        )
    else:
        message = (
            "not locked" if not locks else f"{len(locks)} shared lock(s): a backup or restore is running"
        )
        run.add("repository.locks", Status.OK, message, locks=len(locks))


def _rpo_check(run: _Run, repo: Any, max_age: timedelta, now: datetime) -> None:
    snapshots = repo.list_snapshots(skip_unreadable=True)
    if not snapshots:
        run.add(
            "rpo",
            Status.FAIL,
            "the repository has no snapshots",
            "run `lifeboat backup` and schedule it (docs/RECIPES.md)",
        )
        return
    newest = snapshots[-1]
    run.snapshot_bytes = newest.raw_size()
    age = now - newest.time
    text = f"newest snapshot {newest.short_id} is {_human_age(age)} old (threshold {_human_age(max_age)})"
    details = {
        "snapshot": newest.id,
        "age_seconds": round(age.total_seconds()),
        "max_age_seconds": round(max_age.total_seconds()),
    }
    if age > max_age:
        run.add(
            "rpo",
            Status.FAIL,
            text,
            "backups have stopped: check the scheduler (cron/systemd) and its logs, run `lifeboat backup`",
            **details,
        )
    else:
        run.add("rpo", Status.OK, text, **details)


def _human_age(delta: timedelta) -> str:
    """``5s``, ``12m``, ``26h``, ``3.5d``: days only from two days on, so 26h reads as 26h."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 2 * 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            size = 86400 if unit == "d" else size
            return f"{seconds / size:.1f}".rstrip("0").rstrip(".") + unit
    return f"{seconds}s"


# -- disk -------------------------------------------------------------------------------------------


def _disk_check(run: _Run, inputs: DoctorInputs) -> None:
    estimate = _restore_estimate(run)
    if estimate is None:
        run.add("disk", Status.SKIP, "no database size or snapshot to estimate a restore from")
        return
    places = {"drill scratch": str(inputs.scratch_dir or tempfile.gettempdir())}
    if run.data_directory and os.path.isdir(run.data_directory):
        places["PostgreSQL data directory"] = run.data_directory
    worst = Status.OK
    parts = []
    for label, path in places.items():
        free = shutil.disk_usage(path).free
        parts.append(f"{label} {path}: {free / 1e9:.1f} GB free")
        if free < estimate:
            worst = Status.FAIL
        elif free < 2 * estimate and worst is Status.OK:
            worst = Status.WARN
    message = f"{'; '.join(parts)}; a restore needs about {estimate / 1e9:.2f} GB"
    hint = (
        None if worst is Status.OK else "free disk space (or set TMPDIR for drills) before you need a restore"
    )
    run.add("disk", worst, message, hint, estimate_bytes=estimate)


def _restore_estimate(run: _Run) -> int | None:
    candidates = []
    if run.database_bytes:
        candidates.append(run.database_bytes)
    if run.snapshot_bytes:
        candidates.append(int(run.snapshot_bytes * RESTORE_SIZE_FACTOR))
    return max(candidates) if candidates else None
