"""A repository's snapshot files (``snapshots/<id>``): listing them, reading and authenticating
a manifest, resolving ``latest`` or an id prefix, deleting one. ``Repository`` has these methods;
writing a manifest (which first checks the blobs it needs are durable) stays there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

import zstandard
from pydantic import ValidationError

from lifeboat.errors import CorruptRepository, SnapshotNotFound
from lifeboat.repo.backends import Backend
from lifeboat.repo.blobs import decompress
from lifeboat.repo.config import DAMAGED_DIR, SNAPSHOTS_DIR, basename, snapshot_name
from lifeboat.repo.crypto import DecryptionFailed, Sealer
from lifeboat.repo.filters import NO_FILTER, SnapshotFilter, newest_matching
from lifeboat.repo.manifest import Snapshot

T = TypeVar("T")

LATEST = "latest"


def snapshot_aad(snapshot_id: str) -> bytes:
    return b"lifeboat:snapshot:" + snapshot_id.encode("ascii")


class SnapshotFiles:
    """Snapshot-file methods of :class:`lifeboat.repo.repository.Repository` (its ``backend`` and ``sealer``)."""

    backend: Backend
    sealer: Sealer

    def snapshot_ids(self) -> list[str]:
        return sorted(basename(info.name) for info in self.backend.list(SNAPSHOTS_DIR))

    def snapshot_ids_newest_first(self) -> list[str]:
        """Snapshot ids by the storage's write time, newest first (no manifest is read)."""
        infos = sorted(self.backend.list(SNAPSHOTS_DIR), key=lambda info: -(info.mtime or 0))
        return [basename(info.name) for info in infos]

    def read_snapshot(self, snapshot_id: str) -> Snapshot:
        """Load one manifest by full id; ``CorruptRepository`` when it cannot be decoded."""
        return decode_manifest(snapshot_id, self.read_manifest(snapshot_id))

    def read_manifest(self, snapshot_id: str) -> bytes:
        """One manifest's JSON, authenticated (for a reader that parses it its own way, then
        checks the result with :func:`checked_snapshot`)."""
        try:
            data = self.backend.get(snapshot_name(snapshot_id))
        except FileNotFoundError as exc:
            raise SnapshotNotFound(f"no snapshot {snapshot_id}") from exc
        try:
            return decompress(self.sealer.open(data, snapshot_aad(snapshot_id)))
        except (DecryptionFailed, zstandard.ZstdError) as exc:
            raise CorruptRepository(f"snapshot {snapshot_id} cannot be decoded ({exc})") from exc

    def list_snapshots(self, *, skip_unreadable: bool = False) -> list[Snapshot]:
        """Every snapshot, oldest first, all held at once. A manifest that cannot be decoded raises
        ``CorruptRepository`` unless ``skip_unreadable`` (``check`` reports such manifests)."""
        return self.scan_snapshots(lambda snapshot: snapshot, strict=not skip_unreadable)[0]

    def scan_snapshots(
        self, keep: Callable[[Snapshot], T], *, strict: bool = False
    ) -> tuple[list[T], dict[str, str]]:
        """(what ``keep`` makes of each readable snapshot, oldest first; damaged manifest id -> why):
        one damaged manifest hides none of the others (``snapshots``, ``forget``, ``doctor`` list
        it as damaged). One manifest is held at a time: parsed, one at 20,000 agents is tens of
        MB, so a caller keeps only what it needs of each (a row, its blob ids, its header).
        ``strict``: a manifest that cannot be decoded, or one deleted while listing, raises."""
        found: list[tuple[tuple[datetime, str], T]] = []
        damaged: dict[str, str] = {}
        for snapshot_id in self.snapshot_ids():
            try:
                snapshot = self.read_snapshot(snapshot_id)
            except CorruptRepository as exc:
                if strict:
                    raise
                damaged[snapshot_id] = str(exc)
                continue
            except SnapshotNotFound:
                if strict:
                    raise
                continue  # deleted while listing
            found.append(((snapshot.time, snapshot.id), keep(snapshot)))
            del snapshot
        found.sort(key=lambda item: item[0])
        return [kept for _order, kept in found], damaged

    def resolve_snapshot(self, ref: str, snapshot_filter: SnapshotFilter = NO_FILTER) -> str:
        """A full snapshot id from a unique prefix or ``latest`` (the newest snapshot ``snapshot_filter``
        matches). A snapshot named by id that the filter does not match is not found either: a filter
        is never silently ignored."""
        if ref == LATEST:
            return self._latest(snapshot_filter, self.read_snapshot).id
        matches = [snapshot_id for snapshot_id in self.snapshot_ids() if snapshot_id.startswith(ref.lower())]
        if not ref or not matches:
            raise SnapshotNotFound(f"no snapshot matches {ref!r}")
        if len(matches) > 1:
            shown = ", ".join(match[:12] for match in matches[:5])
            raise SnapshotNotFound(f"snapshot prefix {ref!r} is ambiguous: {shown}")
        if not snapshot_filter.empty() and not snapshot_filter.matches(self.read_snapshot(matches[0])):
            raise SnapshotNotFound(f"snapshot {matches[0][:8]} does not match {snapshot_filter.describe()}")
        return matches[0]

    def load_snapshot(
        self,
        ref: str,
        snapshot_filter: SnapshotFilter = NO_FILTER,
        *,
        read: Callable[[str], Snapshot] | None = None,
    ) -> Snapshot:
        """A snapshot by id, unique id prefix or ``latest`` (see ``resolve_snapshot``); ``read``: how
        a manifest is read by id (default ``read_snapshot``)."""
        read = read or self.read_snapshot
        if ref == LATEST:
            return self._latest(snapshot_filter, read)  # already read while finding it
        return read(self.resolve_snapshot(ref, snapshot_filter))

    def _latest(self, snapshot_filter: SnapshotFilter, read: Callable[[str], Snapshot]) -> Snapshot:
        newest = newest_matching(self.snapshot_ids(), read, snapshot_filter)
        if newest is None:
            if snapshot_filter.empty():
                raise SnapshotNotFound("the repository has no snapshots")
            raise SnapshotNotFound(f"no snapshot matches {snapshot_filter.describe()}")
        return newest

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Remove a manifest (its blobs stay until a prune). Takes the full id."""
        if not self.backend.exists(snapshot_name(snapshot_id)):
            raise SnapshotNotFound(f"no snapshot {snapshot_id}")
        self.backend.delete(snapshot_name(snapshot_id))
        self.backend.delete(DAMAGED_DIR + snapshot_id)  # its `repair snapshots` mark, if any

    def snapshots_needing(self, blob_ids: Iterable[str]) -> dict[str, list[str]]:
        """Blob id -> ids of the snapshots whose manifests refer to it (undecodable manifests skipped)."""
        wanted = set(blob_ids)
        needing: dict[str, list[str]] = {blob_id: [] for blob_id in wanted}
        for snapshot_id in self.snapshot_ids():
            try:
                snapshot = self.read_snapshot(snapshot_id)
            except CorruptRepository:
                continue
            for blob_id in snapshot.blob_ids() & wanted:
                needing[blob_id].append(snapshot_id)
        return needing


def decode_manifest(snapshot_id: str, data: bytes) -> Snapshot:
    """The snapshot an authenticated manifest (:meth:`Repository.read_manifest`) holds, parsed whole."""
    try:
        snapshot = Snapshot.model_validate_json(data)
    except ValidationError as exc:
        raise CorruptRepository(f"snapshot {snapshot_id} cannot be decoded ({exc})") from exc
    return checked_snapshot(snapshot_id, snapshot)


def checked_snapshot(snapshot_id: str, snapshot: Snapshot) -> Snapshot:
    """``snapshot`` read from the manifest named ``snapshot_id``, which must hold that snapshot."""
    if snapshot.id != snapshot_id:
        raise CorruptRepository(f"snapshot file {snapshot_id} holds snapshot {snapshot.id}")
    return snapshot
