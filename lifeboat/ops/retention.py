"""forget (retention policies) and prune: the operations behind ``lifeboat forget`` / ``lifeboat prune``.

The decisions live in :mod:`lifeboat.repo.retention` (pure, restic's semantics) and the pack
work in :mod:`lifeboat.repo.prune`; this module reads the manifests, deletes under the
exclusive lock and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from pydantic import BaseModel, Field

from lifeboat.ops import snapshot_layout as layout
from lifeboat.repo.filters import NO_FILTER, SnapshotFilter
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.prune import DEFAULT_REPACK_THRESHOLD, Progress, PruneStats, acquire_exclusive, prune
from lifeboat.repo.repository import Repository
from lifeboat.repo.retention import GroupDecision, Policy, SnapshotInfo, plan_forget


class ForgetEntry(BaseModel):
    id: str
    short_id: str
    time: str
    tags: list[str]
    keep: bool
    reasons: list[str]


class ForgetGroup(BaseModel):
    key: dict[str, str]
    snapshots: list[ForgetEntry] = Field(description="newest first")


class ForgetResult(BaseModel):
    """What ``lifeboat forget --json`` prints (docs/JSON.md)."""

    dry_run: bool
    policy: str
    groups: list[ForgetGroup]
    kept: list[str]
    removed: list[str]
    damaged: list[str] = []  # manifests that cannot be read: neither kept nor forgotten by the policy
    prune: PruneStats | None = None


def snapshot_info(snapshot: Snapshot) -> SnapshotInfo:
    database = layout.source_document(snapshot).database or ""
    return SnapshotInfo(snapshot.id, snapshot.time, snapshot.hostname, database, tuple(snapshot.tags))


def run_forget(
    repo: Repository,
    policy: Policy,
    *,
    tz: tzinfo,
    group_by: Sequence[str] = ("host", "database"),
    tag_filters: Sequence[str] = (),
    snapshot_filter: SnapshotFilter = NO_FILTER,
    dry_run: bool = False,
    and_prune: bool = False,
    retry_lock: float = 0.0,
    repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
    progress: Progress | None = None,
) -> ForgetResult:
    """Apply ``policy`` to the snapshots ``snapshot_filter`` (and ``tag_filters``) match; delete the manifests it does not keep (exclusive lock), then prune if asked."""
    lock = repo.lock() if dry_run else acquire_exclusive(repo, retry_lock)
    try:
        # damaged manifests are kept, and listed
        matching, damaged = repo.scan_snapshots(
            lambda s: snapshot_info(s) if snapshot_filter.matches(s) else None
        )
        infos = [info for info in matching if info is not None]
        groups = plan_forget(infos, policy, tz=tz, group_by=group_by, tag_filters=tag_filters)
        removed = [s.id for group in groups for s in group.remove]
        if not dry_run and removed:
            lock.ensure_held()
            for snapshot_id in removed:
                repo.delete_snapshot(snapshot_id)
    finally:
        lock.release()
    result = ForgetResult(
        dry_run=dry_run,
        policy=policy.describe(),
        groups=[_group(g) for g in groups],
        kept=[s.id for group in groups for s in group.keep],
        removed=removed,
        damaged=sorted(damaged),
    )
    if and_prune and not dry_run:
        result.prune = prune(
            repo, retry_lock=retry_lock, repack_threshold=repack_threshold, progress=progress
        )
    return result


def run_forget_ids(
    repo: Repository,
    refs: Sequence[str],
    *,
    snapshot_filter: SnapshotFilter = NO_FILTER,
    dry_run: bool = False,
    and_prune: bool = False,
    retry_lock: float = 0.0,
    repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
    progress: Progress | None = None,
) -> ForgetResult:
    """Forget the snapshots named by id, prefix or ``latest`` (restic's ``forget ID…``).

    Every name is resolved (under the exclusive lock) before anything is deleted: one unknown,
    ambiguous or filtered-out name forgets nothing. A damaged manifest can be named by full id.
    """
    lock = repo.lock() if dry_run else acquire_exclusive(repo, retry_lock)
    try:
        readable, damaged = repo.scan_snapshots(Snapshot.header)
        chosen = list(dict.fromkeys(_resolve_named(repo, ref, damaged, snapshot_filter) for ref in refs))
        if not dry_run:
            lock.ensure_held()
            for snapshot_id in chosen:
                repo.delete_snapshot(snapshot_id)
    finally:
        lock.release()
    by_id = {snapshot.id: snapshot for snapshot in readable}
    entries = [
        ForgetEntry(
            id=snapshot_id,
            short_id=snapshot_id[:8],
            time=by_id[snapshot_id].time.isoformat() if snapshot_id in by_id else "",
            tags=list(by_id[snapshot_id].tags) if snapshot_id in by_id else [],
            keep=False,
            reasons=["named" if snapshot_id in by_id else "named (damaged manifest)"],
        )
        for snapshot_id in chosen
    ]
    result = ForgetResult(
        dry_run=dry_run,
        policy="the named snapshots",
        groups=[ForgetGroup(key={}, snapshots=entries)],
        kept=[snapshot.id for snapshot in readable if snapshot.id not in chosen],
        removed=chosen,
        damaged=sorted(set(damaged) - set(chosen)),
    )
    if and_prune and not dry_run:
        result.prune = prune(
            repo, retry_lock=retry_lock, repack_threshold=repack_threshold, progress=progress
        )
    return result


def _resolve_named(
    repo: Repository, ref: str, damaged: dict[str, str], snapshot_filter: SnapshotFilter
) -> str:
    if ref.lower() in damaged:  # a damaged manifest cannot be matched against a filter, only named in full
        return ref.lower()
    return repo.resolve_snapshot(ref, snapshot_filter)


def _group(group: GroupDecision) -> ForgetGroup:
    return ForgetGroup(
        key=group.key,
        snapshots=[
            ForgetEntry(
                id=d.snapshot.id,
                short_id=d.snapshot.id[:8],
                time=d.snapshot.time.isoformat(),
                tags=list(d.snapshot.tags),
                keep=d.keep,
                reasons=d.reasons,
            )
            for d in group.decisions
        ],
    )


def run_prune(
    repo: Repository,
    *,
    dry_run: bool = False,
    retry_lock: float = 0.0,
    repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
    progress: Progress | None = None,
) -> PruneStats:
    return prune(
        repo, dry_run=dry_run, retry_lock=retry_lock, repack_threshold=repack_threshold, progress=progress
    )
