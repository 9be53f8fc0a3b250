"""Regenerate lifeboat's per-release Letta knowledge from the releases' real migrations.

* ``python -m lifeboat.sandbox.release_schema schemas [VERSION ...]``: for each release (default:
  the release matrix and 0.16.8) run *that release's own* ``alembic upgrade head`` in its own
  venv on a throwaway cluster laid out like init.sql, capture the schema's shape and write
  ``lifeboat/letta/schema_<head>.py``. Each release's migrations are used, not 0.16.8's: Letta
  edited some migration files after releasing them.
* ``python -m lifeboat.sandbox.release_schema chain``: read Letta 0.16.8's migration files and
  write ``lifeboat/letta/migration_chain.py`` (the linear chain and what each upgrade() drops or
  rewrites, see :mod:`lifeboat.letta.migration_scan`).

Both outputs are committed data; ``tests/releases`` check them against freshly migrated
databases and the cached sdists so they cannot silently drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from lifeboat.errors import SandboxError
from lifeboat.letta.migration_scan import render_chain_module, scan_directory
from lifeboat.letta.schema_shape import SchemaShape, capture_shape, render_module
from lifeboat.sandbox.letta_env import LETTA_VERSION, ensure_letta_env
from lifeboat.sandbox.letta_schema import LETTA_SCHEMA, create_letta_database, migrate
from lifeboat.sandbox.postgres import Cluster, default_flavor, running_cluster
from lifeboat.sandbox.release_deployment import MATRIX

LETTA_PACKAGE = Path(__file__).resolve().parent.parent / "letta"


def migrated_shape(cluster: Cluster, version: str, dbname: str | None = None) -> SchemaShape:
    """The shape of a fresh database migrated to ``version``'s head by that release's migrations."""
    env = ensure_letta_env(version)
    name = dbname or f"schema_{version.replace('.', '_')}"
    dsn = create_letta_database(cluster, name)
    try:
        migrate(env, dsn)
        with psycopg.connect(cluster.dsn(name)) as conn:
            return capture_shape(conn, LETTA_SCHEMA)
    finally:
        cluster.drop_database(name)


def write_schema_records(versions: list[str], flavor: str | None = None) -> list[Path]:
    written = []
    with running_cluster(flavor or default_flavor()) as cluster:
        for version in versions:
            shape = migrated_shape(cluster, version)
            if shape.revision is None:
                raise SandboxError(f"Letta {version}'s migrations left no alembic_version")
            path = LETTA_PACKAGE / f"schema_{shape.revision}.py"
            origin = (
                f"Generated from a database migrated by Letta {version}'s own migrations\n"
                "(``python -m lifeboat.sandbox.release_schema schemas``)"
            )
            path.write_text(render_module(shape, origin))
            written.append(path)
    return written


def write_chain() -> Path:
    env = ensure_letta_env(LETTA_VERSION)
    migrations = scan_directory(env.src / "alembic" / "versions")
    path = LETTA_PACKAGE / "migration_chain.py"
    path.write_text(render_chain_module(migrations, f"Letta {LETTA_VERSION}"))
    return path


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["chain"]:
        print(write_chain())
        return 0
    if args[:1] == ["schemas"]:
        for path in write_schema_records(args[1:] or [*MATRIX, LETTA_VERSION]):
            print(path)
        return 0
    sys.stderr.write("usage: python -m lifeboat.sandbox.release_schema chain | schemas [VERSION ...]\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
