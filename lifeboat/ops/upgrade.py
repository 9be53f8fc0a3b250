"""``restore --upgrade``: a full restore whose temporary database is migrated by Letta before the switch.

The snapshot's own revision (``source.letta_revision``) and the target (``head``, a release such as
``0.16.8``, or an alembic revision) give the path through Letta 0.16.8's linear migration chain
(:mod:`lifeboat.letta.migrations`). Before anything is created the plan is announced: how many
migrations run and which of them drop or rewrite data. Downgrades and revisions 0.16.8 does not
know are refused (exit 5) before any database is touched.

The migrations run inside the temporary database the restore builds, as the role that owns it,
from the cached Letta 0.16.8 venv with ``LETTA_PG_URI`` pointing at that database
(:mod:`lifeboat.sandbox.letta_upgrade`). If they fail, the restore drops the temporary database:
the target is untouched, nothing is left behind, and the error names the failing migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifeboat import pg
from lifeboat.errors import DatabaseError, UnsafeRestore
from lifeboat.letta import migrations, revisions
from lifeboat.letta.migrations import Migration, MigrationPathError
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.restore import RestoreResult, Trust, run_restore
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository
from lifeboat.settings import RedisTarget


@dataclass
class UpgradePlan:
    from_revision: str
    to_revision: str
    steps: list[Migration]
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows in the snapshot

    def at_stake(self, migration: Migration) -> int:
        """Rows of the snapshot in the tables this migration drops tables or columns of."""
        tables = {target.split(" ", 1)[1].split(".")[0] for target in migration.drops}
        return sum(self.rows.get(table, 0) for table in tables)

    @property
    def data_changes(self) -> list[Migration]:
        return [m for m in self.steps if m.changes_data]

    def lines(self) -> list[str]:
        """What the operator is told before anything happens."""
        head = (
            f"upgrade {self.from_revision} (Letta {revisions.release_label(self.from_revision)}) → "
            f"{self.to_revision} (Letta {revisions.release_label(self.to_revision)}): "
            f"{len(self.steps)} migration(s) with Letta {revisions.release_label(migrations.head())}'s alembic"
        )
        changes = self.data_changes
        if not changes:
            return [head, "no migration on the way drops or rewrites existing data"]
        lines = [head, f"{len(changes)} migration(s) drop or rewrite data:"]
        for m in changes:
            stake = self.at_stake(m)
            lines.append(
                f"  {m.describe()}" + (f" ({stake} row(s) of this snapshot affected)" if stake else "")
            )
        return lines

    def summary(self) -> dict[str, Any]:
        return {
            "from_revision": self.from_revision,
            "from_release": revisions.release_label(self.from_revision),
            "to_revision": self.to_revision,
            "to_release": revisions.release_label(self.to_revision),
            "migrations": len(self.steps),
            "data_changes": [{**_change(m), "rows_at_stake": self.at_stake(m)} for m in self.data_changes],
        }


def _change(m: Migration) -> dict[str, Any]:
    return {
        "revision": m.revision,
        "release": m.release,
        "title": m.title,
        "drops": m.drops,
        "rewrites": m.rewrites,
        "needs_encryption_key": m.needs_encryption_key,
        "note": migrations.NOTES.get(m.revision),
    }


@dataclass
class UpgradeResult:
    restore: RestoreResult
    plan: UpgradePlan
    ran: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            **self.restore.summary(),
            "upgrade": {**self.plan.summary(), "ran": len(self.ran), "seconds": round(self.seconds, 3)},
        }


def plan_upgrade(
    from_revision: str | None, target: str | None, rows: dict[str, int] | None = None
) -> UpgradePlan:
    """The forward path from the snapshot's revision; refuses downgrades and unknown revisions."""
    if not from_revision:
        raise UnsafeRestore(
            "the snapshot records no Letta alembic revision: there is nothing to upgrade from"
        )
    to_revision = migrations.resolve_target(target)
    try:
        steps = migrations.path(from_revision, to_revision)
    except MigrationPathError as exc:
        raise UnsafeRestore(f"cannot upgrade: {exc}") from exc
    return UpgradePlan(from_revision, to_revision, steps, dict(rows or {}))


def snapshot_rows(snapshot: Snapshot) -> dict[str, int]:
    """Rows per table of the snapshot (from its manifest; nothing is read)."""
    rows: dict[str, int] = {}
    for (_schema, table), (stream, _attributes) in layout.table_streams(snapshot).items():
        rows[table] = rows.get(table, 0) + stream.records
    return rows


def snapshot_facts(repo: Repository, snapshot_ref: str) -> tuple[str | None, dict[str, int]]:
    """The snapshot's Letta revision and its row count per table."""
    snapshot = repo.load_snapshot(snapshot_ref)
    return layout.source_document(snapshot).letta_revision or None, snapshot_rows(snapshot)


def run_upgrade_restore(
    repo: Repository,
    snapshot_ref: str,
    target_dsn: str,
    target: str | None = "head",
    *,
    announce: Callable[[UpgradePlan], None] | None = None,
    encryption_key: str | None = None,
    force: bool = False,
    jobs: int = 2,
    redis: RedisTarget | None = None,
    progress: Callable[[int], None] | None = None,
    trust: Trust = Trust(),  # noqa: B008 (frozen)
    notify: Callable[[str], None] | None = None,
) -> UpgradeResult:
    """Restore ``snapshot_ref`` into ``target_dsn`` and migrate it to ``target`` before the switch."""
    revision, rows = snapshot_facts(repo, snapshot_ref)
    plan = plan_upgrade(revision, target, rows)
    if announce is not None:
        announce(plan)
    ran: list[tuple[str, str]] = []
    spent = [0.0]

    def upgrade(temp_dsn: str) -> None:
        if not plan.steps:
            return
        from lifeboat.sandbox.letta_upgrade import MigrationFailed, run_migrations

        started = time.monotonic()
        role = _owner_role(temp_dsn)
        try:
            run = run_migrations(temp_dsn, plan.to_revision, role=role, encryption_key=encryption_key)
        except MigrationFailed as exc:
            raise DatabaseError(f"{exc}; nothing was restored, the target is unchanged") from exc
        ran.extend(run.ran)
        spent[0] = time.monotonic() - started

    result = run_restore(
        repo,
        snapshot_ref,
        target_dsn,
        force=force,
        jobs=jobs,
        redis=redis,
        progress=progress,
        prepare=upgrade,
        trust=trust,
        notify=notify,
    )
    result.timings["upgrade"] = spent[0]
    return UpgradeResult(result, plan, ran, spent[0])


def _owner_role(dsn: str) -> str:
    """The role owning the restored database: Letta's tables must belong to it, as in production."""
    with pg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    if row is None:
        raise DatabaseError("the temporary database vanished before the upgrade")
    return str(row[0])
