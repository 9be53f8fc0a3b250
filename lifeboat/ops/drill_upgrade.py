"""``drill --upgrade-to VERSION``: rehearse a Letta upgrade on a restored copy, never on the live database.

After the drill's restore (into its sandbox or its ``--target`` database):

* ``safety_point``: the restored, not yet upgraded database is copied (``CREATE DATABASE …
  TEMPLATE``) — what an operator keeps to go back if the real upgrade goes wrong; the rehearsal
  proves it can be taken and it is dropped with the drill;
* ``upgrade``: that release's own ``alembic upgrade`` in its cached venv, run as the database's
  owner with ``LETTA_PG_URI`` pointing at the copy (:mod:`lifeboat.sandbox.letta_upgrade`);

then the drill's usual ``verify`` (against the new revision's schema record) and ``smoke`` (the
target release's real server lists the agents and answers a message). The report's ``upgrade``
section names the migrations that ran, those that drop or rewrite data, and their timings; a
failing migration fails the drill in phase ``upgrade`` with the migration named.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from lifeboat import pg
from lifeboat.errors import DatabaseError, UsageError
from lifeboat.letta import revisions
from lifeboat.ops.upgrade import plan_upgrade

SAFETY_SUFFIX = "_pre_upgrade"


def target_release(version: str) -> str:
    """``head`` → 0.16.8; a release lifeboat knows the head of; anything else is a usage error."""
    if version == "head":
        version = revisions.releases_for(revisions.HEAD_0_16_8)[-1]
    for release in revisions.RELEASES:
        if version in revisions.releases_for(release.head):
            return version
    known = ", ".join(release.version for release in revisions.RELEASES)
    raise UsageError(f"--upgrade-to {version}: not a Letta release lifeboat knows ({known})")


def safety_point(admin_dsn: str) -> str:
    """Copy the restored database as ``<name>_pre_upgrade``; returns the copy's name."""
    name = str(psycopg.conninfo.conninfo_to_dict(admin_dsn).get("dbname"))
    copy = f"{name}{SAFETY_SUFFIX}"
    with pg.connect(pg.with_database(admin_dsn, "postgres")) as admin:
        pg.drop_database(admin, copy)
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(name))
        )
    return copy


def drop_safety_point(admin_dsn: str, copy: str) -> None:
    with pg.connect(pg.with_database(admin_dsn, "postgres")) as admin:
        pg.drop_database(admin, copy)


def run_upgrade(
    admin_dsn: str,
    from_revision: str | None,
    version: str,
    encryption_key: str | None,
    rows: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Migrate the restored database to ``version``'s head; returns the report's ``upgrade`` section."""
    from lifeboat.sandbox.letta_upgrade import MigrationFailed, run_migrations

    head = next(r.head for r in revisions.RELEASES if version in revisions.releases_for(r.head))
    plan = plan_upgrade(from_revision, head, rows)
    section: dict[str, Any] = {**plan.summary(), "letta_version": version, "ran": [], "seconds": 0.0}
    if not plan.steps:
        return section
    started = time.monotonic()
    with pg.connect(admin_dsn) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    role = str(row[0]) if row else "postgres"
    try:
        run = run_migrations(admin_dsn, head, role=role, encryption_key=encryption_key, version=version)
    except MigrationFailed as exc:
        raise DatabaseError(str(exc)) from exc
    section["ran"] = [f"{revision} {title}" for revision, title in run.ran]
    section["seconds"] = round(time.monotonic() - started, 3)
    return section
