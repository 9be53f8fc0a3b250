"""Run a Letta release's own alembic migrations against a PostgreSQL database, safely.

Letta's ``alembic/env.py`` imports the whole server and, when ``LETTA_PG_URI`` is unset, silently
migrates a SQLite file under ``~/.letta`` instead. So the migrations run in the release's cached
venv (:mod:`lifeboat.sandbox.letta_env`) with a scrubbed environment, a throwaway ``HOME``,
``LETTA_PG_URI`` always set to the database (a plain ``postgresql://`` URI: pg8000 rejects
``sslmode``), ``LETTA_ENCRYPTION_KEY`` passed through only when given, and we check afterwards that
the database's own ``alembic_version`` really moved to the target.

The connection's role matters: tables a migration creates belong to whoever runs it, and the
Letta server (role ``letta`` in production) must own them. A small launcher registers an
SQLAlchemy connect hook that runs ``SET ROLE <owner>`` on every new connection, then hands over
to alembic's own command line; so an admin DSN can migrate a database owned by ``letta``.

Letta's output is never shown as is: ``env.py`` prints the database URI, password included.
On failure we report the migration that was running and the last error line, redacted.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg

from lifeboat.errors import SandboxError
from lifeboat.sandbox.letta_env import LETTA_VERSION, LettaEnv, ensure_letta_env
from lifeboat.sandbox.letta_schema import letta_process_env

_LAUNCHER = """
import sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

role = sys.argv[1]

@event.listens_for(Engine, "connect")
def _set_role(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute('SET ROLE "' + role.replace('"', '""') + '"')
    cursor.close()
    dbapi_connection.commit()

from alembic.config import main
sys.argv = ["alembic", *sys.argv[2:]]
main(prog="alembic")
"""
_RUNNING = re.compile(r"Running upgrade (\S+) -> (\S+), (.*)$")
TIMEOUT = 3600


class MigrationFailed(SandboxError):
    """Letta's migrations stopped with an error; ``revision`` is the migration that was running."""

    def __init__(self, message: str, revision: str | None, title: str | None) -> None:
        super().__init__(message)
        self.revision = revision
        self.title = title


@dataclass
class MigrationRun:
    """What ``alembic upgrade`` did: the migrations it ran (in order) and how long it took."""

    from_revision: str | None
    to_revision: str | None
    ran: list[tuple[str, str]] = field(default_factory=list)  # (revision, title)
    seconds: float = 0.0
    letta_version: str = LETTA_VERSION


def pg8000_uri(dsn: str) -> str:
    """``postgresql://user:pass@host:port/db`` for Letta's ``LETTA_PG_URI`` (no query options)."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    host = str(info.get("host") or "127.0.0.1")
    if host.startswith("/"):
        raise SandboxError("Letta's migrations need a TCP host in the DSN (not a Unix socket directory)")
    user = quote(str(info.get("user") or "postgres"), safe="")
    password = info.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    port = info.get("port") or 5432
    dbname = quote(str(info.get("dbname") or ""), safe="")
    if not dbname:
        raise SandboxError("the DSN for Letta's migrations names no database")
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


def database_revision(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else str(row[0])


def run_migrations(
    dsn: str,
    target: str,
    *,
    role: str,
    encryption_key: str | None = None,
    version: str = LETTA_VERSION,
    env: LettaEnv | None = None,
) -> MigrationRun:
    """``alembic upgrade <target>`` of Letta ``version`` on the database at ``dsn``, as ``role``.

    The database's search_path must already point at Letta's schema (a restore sets it). Raises
    :class:`MigrationFailed` naming the failing migration; the database is then in whatever state
    the failed migration left (callers run this on a temporary database they drop).
    """
    letta_env = env or ensure_letta_env(version)
    before = database_revision(dsn)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lifeboat-migrate-home-") as home:
        env_vars = letta_process_env(home, pg8000_uri(dsn))
        if encryption_key:
            env_vars["LETTA_ENCRYPTION_KEY"] = encryption_key
        args = [str(letta_env.python), "-c", _LAUNCHER, role, "upgrade", target]
        try:
            done = subprocess.run(
                args, cwd=letta_env.src, env=env_vars, capture_output=True, text=True, timeout=TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise MigrationFailed(f"Letta's migrations did not finish in {TIMEOUT} s", None, None) from exc
    output = (done.stdout or "") + "\n" + (done.stderr or "")
    ran = [(m.group(2), m.group(3).strip()) for m in map(_RUNNING.search, output.splitlines()) if m]
    secrets = [s for s in (psycopg.conninfo.conninfo_to_dict(dsn).get("password"), encryption_key) if s]
    if done.returncode != 0:
        raise _failure(output, ran, [str(s) for s in secrets])
    after = database_revision(dsn)
    if after != target:
        raise MigrationFailed(
            f"Letta's migrations ended without error but the database is at {after}, not {target} "
            "(did they migrate something else?)",
            None,
            None,
        )
    return MigrationRun(before, after, ran, time.monotonic() - started, letta_version=letta_env.version)


def _failure(output: str, ran: list[tuple[str, str]], secrets: list[str]) -> MigrationFailed:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    error = next(
        (line for line in reversed(lines) if re.match(r"^[\w.]+(Error|Exception|Failed)\b", line)),
        lines[-1] if lines else "no output",
    )
    for secret in secrets:
        error = error.replace(secret, "***")
    revision, title = ran[-1] if ran else (None, None)
    where = f"migration {revision} ({title})" if revision else "before the first migration"
    return MigrationFailed(f"Letta's migrations failed in {where}: {error[:500]}", revision, title)
