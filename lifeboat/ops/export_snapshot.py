"""`lifeboat export --from-snapshot`: agent files from a lifeboat snapshot instead of the live database.

The snapshot is restored (``run_restore``, blobs verified as they are read) into a scratch
database — on a throwaway embedded PostgreSQL by default, or as a NEW database on a server the
operator names with ``--scratch`` — and exported from there with the same code as a live export
(:func:`lifeboat.ops.export.export_from_connection`). The scratch database is always removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from lifeboat import pg
from lifeboat.errors import UnsafeRestore
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.export import ExportReport, export_from_connection
from lifeboat.repo.repository import Repository


@contextlib.contextmanager
def scratch_database(scratch_dsn: str | None, name: str) -> Iterator[str]:
    """Admin DSN of a database that does not exist yet; whatever is created there is dropped after."""
    if scratch_dsn is not None:
        target = str(psycopg.conninfo.conninfo_to_dict(scratch_dsn).get("dbname") or "")
        if not target:
            raise UnsafeRestore("--scratch must name a database (it is created, then dropped)")
        with pg.connect(pg.with_database(scratch_dsn, "postgres")) as admin:
            if pg.database_exists(admin, target):
                raise UnsafeRestore(f"database {target} already exists: --scratch names a NEW database")
        try:
            yield scratch_dsn
        finally:
            with pg.connect(pg.with_database(scratch_dsn, "postgres")) as admin:
                pg.drop_database(admin, target)
        return
    from lifeboat.sandbox.letta_schema import ensure_letta_role
    from lifeboat.sandbox.postgres import default_flavor, start_cluster

    cluster = start_cluster(default_flavor())
    try:
        ensure_letta_role(cluster)  # keep init.sql's owner
        yield pg.with_database(cluster.dsn(), name)
    finally:
        cluster.stop()


def export_from_snapshot(
    repo: Repository,
    snapshot_ref: str,
    agent_ids: Sequence[str] | None,
    output: Path,
    *,
    complete: bool = False,
    scratch_dsn: str | None = None,
    jobs: int = 2,
) -> ExportReport:
    """Export ``agent_ids`` (None = all) as they were in snapshot ``snapshot_ref``."""
    from lifeboat.ops.restore import run_restore

    snapshot = repo.load_snapshot(snapshot_ref)
    database = layout.source_document(snapshot).database or "letta"
    with scratch_database(scratch_dsn, database) as dsn:
        run_restore(repo, snapshot.id, dsn, jobs=jobs, safety_snapshot=False)
        with pg.connect(dsn) as conn, pg.database_errors("export failed"):
            return export_from_connection(conn, agent_ids, output, complete=complete)
