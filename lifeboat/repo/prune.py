"""``prune``: remove what no snapshot needs any more, under the exclusive lock.

What happens to each pack present when prune starts:

* **unused** (no blob any snapshot needs): deleted;
* **partly used**: repacked when its unused share exceeds ``repack_threshold`` (default 20 %):
  the needed blob bodies are read, verified and written, as they are (no re-encryption), into
  new packs, then the old pack is deleted; below the threshold it is kept as it is (a little
  wasted space is cheaper than rewriting many packs);
* **fully used**: kept;
* **not in any index** (left by an interrupted backup, or a backup still running): deleted
  once the storage wrote it more than ``safety_margin`` (default 2 h) ago, by the storage's own
  modification times; younger ones are left alone, however stale their writer's lock looks
  (Kopia's safety margin: a lock judged stale by mistake must not cost a running backup its data).

Order, so that a crash at any point leaves every snapshot readable: new packs, then one new set
of index files listing every kept and new pack, then the old index files are deleted, then the
packs. A crash before the old index files are gone leaves duplicate index entries (harmless); a
crash after leaves unindexed packs, which the next prune deletes.

Safety against a concurrent backup: a backup holds a shared lock for its whole run (judged by
the storage's clock, see ``locks``), so prune cannot take the exclusive lock while one runs (``RepositoryLocked``, or it waits up to
``retry_lock`` seconds), and a backup cannot start while prune holds it. On top of that, prune
only ever deletes files it listed when it started, and re-lists the index right before deleting:
a pack that an index file written since then lists is never deleted. Should a lock still be
misjudged, the backup's unindexed packs are protected by the safety margin, and a backup whose
manifest would need a pack prune deleted refuses to save it (``Repository.save_snapshot``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from lifeboat.errors import CorruptRepository, RepositoryLocked
from lifeboat.repo.blobs import decode_blob
from lifeboat.repo.config import DATA_DIR, INDEX_DIR, basename, index_name, pack_name
from lifeboat.repo.index import IndexFile, PackEntry, carried_forward, superseded
from lifeboat.repo.locks import RepositoryLock
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.packs import PackBuilder, PackedBlob
from lifeboat.repo.repository import Repository

DEFAULT_REPACK_THRESHOLD = 0.2
DEFAULT_SAFETY_MARGIN = timedelta(hours=2)
PACKS_PER_INDEX_FILE = 512
Progress = Callable[[int], None]


class PruneStats(BaseModel):
    """What prune found and did (``lifeboat prune --json``; docs/JSON.md)."""

    dry_run: bool = False
    snapshots: int = 0
    blobs_used: int = 0
    blobs_unused: int = 0
    packs_before: int = 0
    packs_kept: int = 0
    packs_repacked: int = 0
    packs_removed: int = Field(default=0, description="unused packs deleted (excluding repacked ones)")
    packs_unindexed_removed: int = 0
    packs_unindexed_young: int = Field(
        default=0, description="unindexed packs kept: younger than the safety margin"
    )
    packs_written: int = 0
    index_files_replaced: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_freed: int = 0
    bytes_repacked: int = 0
    seconds: float = 0.0


@dataclass
class PrunePlan:
    """Decisions for every pack listed at the start. Pack ids map to sizes in bytes."""

    stats: PruneStats
    index_files: list[str]
    supersedes: list[str] = field(default_factory=list)  # what the new index files say they replace
    keep: dict[str, PackEntry] = field(default_factory=dict)
    repack: dict[str, PackEntry] = field(default_factory=dict)
    remove: dict[str, int] = field(default_factory=dict)
    unindexed: dict[str, int] = field(default_factory=dict)
    # blob id -> (pack id, where in it): the one copy of each needed blob that prune keeps.
    canonical: dict[str, tuple[str, PackedBlob]] = field(default_factory=dict)


def acquire_exclusive(repo: Repository, retry_lock: float = 0.0, poll: float = 1.0) -> RepositoryLock:
    """The exclusive lock, waiting up to ``retry_lock`` seconds for other holders to finish."""
    deadline = time.monotonic() + retry_lock
    while True:
        try:
            return repo.lock(exclusive=True)
        except RepositoryLocked:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def plan_prune(
    repo: Repository,
    *,
    repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
    safety_margin: timedelta = DEFAULT_SAFETY_MARGIN,
    now: datetime | None = None,
) -> PrunePlan:
    """Read manifests, index files and the pack listing; decide what happens to each pack.

    ``now`` is the storage's time (the modification time of prune's own lock file); unindexed
    packs written after ``now - safety_margin`` are left alone.
    """
    files, entries = _read_index_files(repo)
    index_files = [index_name(file.id) for file in files]
    listing = list(repo.backend.list(DATA_DIR))
    stored = {basename(info.name): info.size for info in listing}
    cutoff = (now or datetime.now(UTC)).timestamp() - safety_margin.total_seconds()
    young = {basename(info.name) for info in listing if info.mtime is None or info.mtime > cutoff}
    used: set[str] = set()

    def use(snapshot: Snapshot) -> str:
        used.update(snapshot.blob_ids())
        return snapshot.id

    snapshots, damaged = repo.scan_snapshots(use)
    if damaged:  # never prune blind: the blobs of an unreadable manifest are unknown
        raise CorruptRepository(
            f"refusing to prune: {len(damaged)} snapshot manifest(s) cannot be read (first: {min(damaged)}); "
            "`lifeboat repair snapshots --forget` removes them"
        )
    stats = PruneStats(snapshots=len(snapshots), blobs_used=len(used), packs_before=len(stored))
    stats.bytes_before = sum(stored.values())
    plan = PrunePlan(stats=stats, index_files=index_files, supersedes=carried_forward(files))
    present = {pack_id: entry for pack_id, entry in entries.items() if pack_id in stored}
    plan.canonical = _choose_copies(present, used)
    missing = sorted(used - set(plan.canonical))
    if missing:
        raise CorruptRepository(
            f"refusing to prune: {len(missing)} blob(s) that snapshots need are in no stored pack "
            f"(first: {missing[0]}); run 'lifeboat check'"
        )
    indexed_blobs = {blob.id for entry in present.values() for blob in entry.blobs}
    stats.blobs_unused = len(indexed_blobs - used)
    for pack_id, size in stored.items():
        entry = present.get(pack_id)
        if entry is None:
            if pack_id in young:
                stats.packs_unindexed_young += 1
            else:
                plan.unindexed[pack_id] = size
            continue
        used_bytes = sum(
            blob.length for blob in entry.blobs if plan.canonical.get(blob.id, ("",))[0] == pack_id
        )
        if used_bytes == 0:
            plan.remove[pack_id] = size
        elif (size - used_bytes) / max(size, 1) > repack_threshold:
            plan.repack[pack_id] = entry
        else:
            plan.keep[pack_id] = entry
    _count(plan, stored)
    return plan


def _read_index_files(repo: Repository) -> tuple[list[IndexFile], dict[str, PackEntry]]:
    """The index files and pack id -> entry (blobs of several listings merged), leaving out the
    packs of index files another one supersedes (they are deleted with the rest)."""
    files: list[IndexFile] = []
    for info in repo.backend.list(INDEX_DIR):
        try:
            files.append(repo.read_index_file(info.name, repo.backend.get(info.name)))
        except FileNotFoundError:
            continue
        except Exception as exc:
            raise CorruptRepository(
                f"refusing to prune: index file {info.name} cannot be decoded ({exc}); run 'lifeboat check'"
            ) from exc
    replaced = superseded(files)
    packs: dict[str, PackEntry] = {}
    for entry in (entry for file in files if file.id not in replaced for entry in file.packs):
        known = packs.get(entry.id)
        if known is None:
            packs[entry.id] = entry
        else:
            merged = {blob.id: blob for blob in [*known.blobs, *entry.blobs]}
            packs[entry.id] = PackEntry(entry.id, entry.size, list(merged.values()))
    return files, packs


def _choose_copies(packs: dict[str, PackEntry], used: set[str]) -> dict[str, tuple[str, PackedBlob]]:
    """One stored copy of each needed blob, preferring packs that hold more needed blobs."""
    needed_per_pack = {pack_id: sum(1 for b in e.blobs if b.id in used) for pack_id, e in packs.items()}
    canonical: dict[str, tuple[str, PackedBlob]] = {}
    for pack_id in sorted(packs, key=lambda p: (-needed_per_pack[p], p)):
        for blob in packs[pack_id].blobs:
            if blob.id in used and blob.id not in canonical:
                canonical[blob.id] = (pack_id, blob)
    return canonical


def _count(plan: PrunePlan, stored: dict[str, int]) -> None:
    stats = plan.stats
    stats.packs_kept = len(plan.keep)
    stats.packs_repacked = len(plan.repack)
    stats.packs_removed = len(plan.remove)
    stats.packs_unindexed_removed = len(plan.unindexed)
    stats.bytes_repacked = sum(
        blob.length for pack_id, blob in plan.canonical.values() if pack_id in plan.repack
    )
    removed = [*plan.remove, *plan.repack, *plan.unindexed]
    stats.bytes_freed = sum(stored[pack_id] for pack_id in removed)
    stats.bytes_after = stats.bytes_before - stats.bytes_freed + stats.bytes_repacked


def prune(
    repo: Repository,
    *,
    dry_run: bool = False,
    repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
    retry_lock: float = 0.0,
    progress: Progress | None = None,
    before_delete: Callable[[PrunePlan], None] | None = None,
    safety_margin: timedelta = DEFAULT_SAFETY_MARGIN,
) -> PruneStats:
    """Prune ``repo`` under the exclusive lock (a dry run only plans, under a shared lock).

    ``before_delete`` is a test hook called after the new index is written, before anything
    is deleted.
    """
    started = time.monotonic()
    lock = repo.lock() if dry_run else acquire_exclusive(repo, retry_lock)
    try:
        now = repo.locks.storage_now(list(repo.locks.all()), lock.id)
        plan = plan_prune(repo, repack_threshold=repack_threshold, safety_margin=safety_margin, now=now)
        plan.stats.dry_run = dry_run
        if not dry_run:
            _execute(repo, lock, plan, progress, before_delete)
    finally:
        lock.release()
    plan.stats.seconds = round(time.monotonic() - started, 3)
    return plan.stats


def _execute(
    repo: Repository,
    lock: RepositoryLock,
    plan: PrunePlan,
    progress: Progress | None,
    before_delete: Callable[[PrunePlan], None] | None,
) -> None:
    written = _repack(repo, plan, progress)
    plan.stats.packs_written = len(written)
    nothing_to_do = not (plan.repack or plan.remove or plan.unindexed)
    if nothing_to_do and len(plan.index_files) <= 1:
        return
    new_index_files = _write_index(repo, [*plan.keep.values(), *written], plan.supersedes)
    if before_delete:
        before_delete(plan)
    protected = _packs_indexed_since(repo, set(plan.index_files) | new_index_files)
    lock.ensure_held()
    for name in plan.index_files:
        if name not in new_index_files:  # same packs, same content, same name: the file is current
            repo.backend.delete(name)
    plan.stats.index_files_replaced = len(plan.index_files)
    for pack_id in [*plan.remove, *plan.repack, *plan.unindexed]:
        if pack_id not in protected:
            repo.backend.delete(pack_name(pack_id))
    repo.load_index()


def _repack(repo: Repository, plan: PrunePlan, progress: Progress | None) -> list[PackEntry]:
    """Copy the needed blobs of the packs to repack into new packs (bodies verified, not re-encoded)."""
    written: list[PackEntry] = []
    builder = PackBuilder()
    for pack_id in sorted(plan.repack):
        for blob_id, (source, blob) in sorted(plan.canonical.items()):
            if source != pack_id:
                continue
            body = repo.backend.get(pack_name(pack_id), blob.offset, blob.length)
            decode_blob(repo.keys, repo.sealer, blob_id, body, blob.raw_size)  # CorruptBlob: abort
            builder.add(blob_id, body, blob.raw_size)
            if progress:
                progress(len(body))
            if builder.size >= repo.config.pack_size:
                written.append(_store_pack(repo, builder))
                builder = PackBuilder()
    if len(builder):
        written.append(_store_pack(repo, builder))
    return written


def _store_pack(repo: Repository, builder: PackBuilder) -> PackEntry:
    sealed = builder.seal(repo.sealer)
    repo.backend.put(pack_name(sealed.id), sealed.data)
    return PackEntry(sealed.id, len(sealed.data), sealed.blobs)


def _write_index(repo: Repository, entries: list[PackEntry], supersedes: list[str]) -> set[str]:
    """New index files for ``entries``; the first one carries the ``supersedes`` list."""
    names = set()
    for start in range(0, max(len(entries), 1), PACKS_PER_INDEX_FILE):
        chunk = entries[start : start + PACKS_PER_INDEX_FILE]
        name, data = repo.encode_index_file(chunk, supersedes if start == 0 else ())
        repo.backend.put(name, data)
        names.add(name)
    return names


def _packs_indexed_since(repo: Repository, known: set[str]) -> set[str]:
    """Packs listed by index files that appeared after prune started (never delete those)."""
    protected: set[str] = set()
    for info in repo.backend.list(INDEX_DIR):
        if info.name in known:
            continue
        try:
            protected |= {
                entry.id for entry in repo.decode_index_file(info.name, repo.backend.get(info.name))
            }
        except Exception as exc:
            raise CorruptRepository(
                f"prune stopped before deleting anything: new index file {info.name} cannot be read ({exc})"
            ) from exc
    return protected
