"""``lifeboat tag``: add, remove or set the tags of snapshots (restic's ``tag``).

A snapshot's tags live in its manifest. Changing them rewrites the manifest with the same
content and the same id in one atomic put (a local rename or one S3 PUT), under the exclusive
lock: readers see the old manifest or the new one, never a mix, and nothing that refers to the
snapshot by id (drill records, repair marks, scripts) goes stale. restic gives the rewritten
snapshot a new id (its ids are content hashes) and records the old one; lifeboat's ids are
random, so keeping the id is both possible and simpler.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lifeboat.errors import UsageError, note_rolled_back
from lifeboat.repo.filters import NO_FILTER, SnapshotFilter
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository

_TAG = re.compile(r"^[^\s,]+$")


@dataclass(frozen=True)
class TagChange:
    """What ``retag`` does to each snapshot: ``set`` replaces all tags; else ``add`` then ``remove``."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    set: tuple[str, ...] | None = None

    def check(self) -> None:
        if self.set is None and not self.add and not self.remove:
            raise UsageError("give --add, --remove or --set")
        if self.set is not None and (self.add or self.remove):
            raise UsageError("--set replaces every tag: not with --add or --remove")
        for tag in (*self.add, *self.remove, *(self.set or ())):
            if not _TAG.match(tag):
                raise UsageError(
                    f"tag {tag!r} is not valid: no spaces or commas (a comma means 'and' in --tag)"
                )

    def apply(self, tags: Sequence[str]) -> list[str]:
        if self.set is not None:
            return list(dict.fromkeys(self.set))
        kept = [tag for tag in dict.fromkeys([*tags, *self.add]) if tag not in self.remove]
        return kept


@dataclass(frozen=True)
class Retagged:
    id: str
    before: list[str]
    after: list[str]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def retag(
    repo: Repository,
    refs: Sequence[str],
    change: TagChange,
    snapshot_filter: SnapshotFilter = NO_FILTER,
    *,
    dry_run: bool = False,
) -> list[Retagged]:
    """Change the tags of the snapshots named by ``refs`` (or, without refs, of every snapshot the
    non-empty ``snapshot_filter`` matches). Every name is resolved before any manifest is rewritten."""
    change.check()
    if not refs and snapshot_filter.empty():
        raise UsageError(
            "name the snapshots, or select them with --host/--tag/--source (refusing to retag all)"
        )
    with repo.lock(exclusive=True):
        if refs:
            ids = list(dict.fromkeys(repo.resolve_snapshot(ref, snapshot_filter) for ref in refs))
            chosen = [repo.read_snapshot(snapshot_id) for snapshot_id in ids]
        else:
            chosen = snapshot_filter.select(repo.list_snapshots())
        results = [Retagged(s.id, list(s.tags), change.apply(s.tags)) for s in chosen]
        if not dry_run:
            _rewrite_all(repo, chosen, results)
    return results


def _rewrite_all(repo: Repository, chosen: list[Snapshot], results: list[Retagged]) -> None:
    """Rewrite every changed manifest; on any failure or interruption put back those already
    rewritten, so the command changes all of them or none."""
    done: list[Snapshot] = []
    try:
        for snapshot, result in zip(chosen, results, strict=True):
            if result.changed:
                repo.rewrite_snapshot(snapshot.model_copy(update={"tags": result.after}))
                done.append(snapshot)
    except BaseException as exc:
        for original in done:
            repo.rewrite_snapshot(original)
        if done:
            note_rolled_back(exc, f"the tags of {len(done)} snapshot(s) already changed")
        raise
