"""Snapshot filters (``--host``, ``--tag`` and conditions of the layers above), with restic's semantics.

- ``hosts``: a snapshot matches when its hostname is one of them (repeat = either);
- ``tags``: each entry is a comma list of tags the snapshot must *all* carry; the snapshot matches
  when one entry does (``--tag a,b --tag c`` = (a and b) or c);
- ``conditions``: named predicates the layers above add about what they store in a snapshot's
  documents (the operations layer adds ``--source``, the database a snapshot was read from); all
  of them must hold.

An empty filter matches every snapshot. ``latest`` is the newest snapshot the filter matches
(:meth:`lifeboat.repo.repository.Repository.resolve_snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lifeboat.errors import SnapshotNotFound
from lifeboat.repo.manifest import Snapshot


def tags_match(have: Iterable[str], tag_filters: Sequence[str]) -> bool:
    """restic's ``--tag``: no filter matches all; a filter ``a,b`` needs both; any filter may match."""
    wanted = [set(part for part in filter_.split(",") if part) for filter_ in tag_filters if filter_]
    if not wanted:
        return True
    tags = set(have)
    return any(group <= tags for group in wanted)


@dataclass(frozen=True)
class Condition:
    """A predicate of an upper layer, with the words that name it in messages (e.g. ``--source letta``)."""

    describe: str
    test: Callable[[Snapshot], bool]


@dataclass(frozen=True)
class SnapshotFilter:
    """Which snapshots a command considers (see the module doc)."""

    hosts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()

    def empty(self) -> bool:
        return not self.hosts and not any(self.tags) and not self.conditions

    def matches(self, snapshot: Snapshot) -> bool:
        if self.hosts and snapshot.hostname not in self.hosts:
            return False
        if not tags_match(snapshot.tags, self.tags):
            return False
        return all(condition.test(snapshot) for condition in self.conditions)

    def select(self, snapshots: Iterable[Snapshot]) -> list[Snapshot]:
        """The matching snapshots, in the given order."""
        return [snapshot for snapshot in snapshots if self.matches(snapshot)]

    def describe(self) -> str:
        """The filter as the options that express it, e.g. ``--host db1 --tag nightly``."""
        parts = [f"--host {host}" for host in self.hosts]
        parts += [f"--tag {tag}" for tag in self.tags if tag]
        parts += [condition.describe for condition in self.conditions]
        return " ".join(parts) or "(no filter)"


NO_FILTER = SnapshotFilter()


def newest_matching(
    snapshot_ids: Iterable[str], read: Callable[[str], Snapshot], snapshot_filter: SnapshotFilter
) -> Snapshot | None:
    """The newest snapshot ``snapshot_filter`` matches (``latest``), reading one manifest at a
    time and holding only the newest so far: a big deployment's manifest is tens of MB once
    parsed, so holding them all would grow with the repository. ``read`` raises for a manifest
    that cannot be decoded; one deleted while listing (``SnapshotNotFound``) is skipped."""
    newest: Snapshot | None = None
    for snapshot_id in snapshot_ids:
        try:
            snapshot = read(snapshot_id)
        except SnapshotNotFound:
            continue
        if snapshot_filter.matches(snapshot) and (
            newest is None or (snapshot.time, snapshot.id) > (newest.time, newest.id)
        ):
            newest = snapshot
        del snapshot
    return newest
