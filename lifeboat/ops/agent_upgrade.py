"""Agent restore across Letta releases: take an agent from an *older* snapshot into a newer live server.

An agent's rows in a 0.14.0 snapshot do not fit a 0.16.8 database column for column, and Letta's
migrations change data as well as shape. So when the snapshot's alembic revision is older than
the live database's, the agents are not copied "columns by name": the whole snapshot is restored
into a throwaway sandbox cluster, upgraded there to the live revision by Letta's own migrations
(:func:`lifeboat.ops.upgrade.run_upgrade_restore`), backed up into a throwaway repository, and
the agents are taken from that upgraded copy by the ordinary agent restore — same plan, same
atomic apply, same report (with the upgrade noted in its warnings). The sandbox and the scratch
repository are removed afterwards; the user's repository gains nothing.

A snapshot *newer* than the live database is refused: there is no downgrade path. When either
revision is unknown to lifeboat, or both are equal, this is the ordinary agent restore.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path

import psycopg

from lifeboat import pg
from lifeboat.errors import UnsafeRestore
from lifeboat.letta import migrations, revisions
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore import AgentRestoreReport, Options, run_agent_restore
from lifeboat.repo.kdf import KdfParams
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository
from lifeboat.settings import RedisTarget

#: The scratch repository lives for seconds in a private temp dir: no need for a slow KDF.
_SCRATCH_KDF = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def live_revision(dsn: str) -> str | None:
    with pg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else str(row[0])


def run_agent_restore_any_release(
    repo: Repository,
    dsn: str,
    *,
    snapshot_ref: str | Snapshot = "latest",
    agent_ids: Iterable[str] = (),
    name: str | None = None,
    tag: str | None = None,
    options: Options | None = None,
    redis: RedisTarget | None = None,
    encryption_key: str | None = None,
    flavor: str | None = None,
) -> AgentRestoreReport:
    """``run_agent_restore``, upgrading an older snapshot in a sandbox first (see the module doc).
    ``snapshot_ref``: a reference, or the snapshot the caller read (its manifest is not read again)."""
    snapshot = snapshot_ref if isinstance(snapshot_ref, Snapshot) else repo.load_snapshot(snapshot_ref)
    source = layout.source_document(snapshot)
    from_revision = source.letta_revision
    to_revision = live_revision(dsn)
    start, end = migrations.position(from_revision), migrations.position(to_revision)
    kwargs = {"agent_ids": agent_ids, "name": name, "tag": tag, "options": options, "redis": redis}
    if start is None or end is None or start == end:
        return run_agent_restore(repo, dsn, snapshot_ref=snapshot, **kwargs)  # type: ignore[arg-type]
    if start > end:
        raise UnsafeRestore(
            f"snapshot {snapshot.short_id} is Letta {revisions.release_label(from_revision)} ({from_revision}), "
            f"newer than the live database's Letta {revisions.release_label(to_revision)} ({to_revision}): "
            "agents cannot be taken back to an older schema; upgrade the server first"
        )
    assert from_revision is not None and to_revision is not None
    # only here: a same-release restore (the usual one) starts ~0.2 s faster without them (pglast...)
    from lifeboat.ops.backup import run_backup
    from lifeboat.ops.upgrade import run_upgrade_restore
    from lifeboat.sandbox.letta_schema import ensure_letta_role
    from lifeboat.sandbox.postgres import running_cluster

    database = source.database or "letta"
    with running_cluster(flavor) as cluster, tempfile.TemporaryDirectory(prefix="lifeboat-upgrade-") as tmp:
        ensure_letta_role(cluster)  # keep init.sql's owner, so the migrations run as role letta
        upgraded = run_upgrade_restore(
            repo, snapshot.id, cluster.dsn(database), to_revision, encryption_key=encryption_key
        )
        scratch = Repository.init(Path(tmp) / "repo", secrets.token_hex(16), kdf=_SCRATCH_KDF)
        copy = run_backup(scratch, cluster.dsn(database)).snapshot
        report = run_agent_restore(scratch, dsn, snapshot_ref=copy.id, **kwargs)  # type: ignore[arg-type]
    report.snapshot = snapshot.id
    changes = [m.revision for m in upgraded.plan.data_changes]
    report.warnings.insert(
        0,
        f"snapshot {snapshot.short_id} is Letta {revisions.release_label(from_revision)} ({from_revision}): "
        f"its agents were taken from a sandbox copy upgraded to {to_revision} by {len(upgraded.ran)} "
        f"migration(s) of Letta's own"
        + (f" ({len(changes)} drop or rewrite data: {', '.join(changes)})" if changes else ""),
    )
    report.timings["upgrade_sandbox"] = round(upgraded.restore.seconds, 3)
    return report
