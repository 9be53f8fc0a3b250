"""``copy``: snapshots from one repository into another (a second copy, offsite, or a new passphrase).

Each blob is read and verified from the source, then stored in the target as the target stores
anything: with the target's id key (so its id may differ), compressed and sealed with the
target's encryption key (or in clear when the target is unencrypted). Deduplication works at
both ends: a blob already in the target (by its target id) is not stored again, and a blob that
several copied snapshots share is read once. Snapshots keep their ids, so copying again skips
what the target already has; a copied manifest is saved only after its blobs are durable there.
Drill reports (``drills/``) stay with the repository the drills ran against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from lifeboat.errors import UsageError
from lifeboat.repo.manifest import BlobRef, Snapshot, Stream
from lifeboat.repo.repository import Repository
from lifeboat.repo.writer import RepositoryWriter

Progress = Callable[[int], None]  # plaintext bytes read from the source


class CopyStats(BaseModel):
    """What ``lifeboat copy --json`` prints (docs/JSON.md)."""

    source: str
    target: str
    target_encrypted: bool
    copied: list[str] = []
    skipped: list[str] = []  # already in the target
    blobs_read: int = 0
    blobs_new: int = 0
    blobs_deduplicated: int = 0
    raw_bytes_read: int = 0
    bytes_added: int = 0
    seconds: float = 0.0


def copy_snapshots(
    source: Repository,
    target: Repository,
    snapshot_ids: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
) -> CopyStats:
    """Copy snapshots under shared locks on both repositories: ``snapshot_ids`` (full ids) in the
    order given, less any that a concurrent ``forget`` removed before the locks were held; all the
    source's, oldest first, when None. The caller that chose the ids has read their manifests
    already (the CLI, to filter and size them): they are not read all again here, each only when
    it is copied."""
    if source.config.id == target.config.id:
        raise UsageError("source and target are the same repository")
    started = time.monotonic()
    stats = CopyStats(
        source=source.backend.url, target=target.backend.url, target_encrypted=target.config.encrypted
    )
    with source.lock(), target.lock():
        if snapshot_ids is None:
            # ids oldest first, one manifest held at a time; a manifest that cannot be read raises
            order, _damaged = source.scan_snapshots(lambda snapshot: snapshot.id, strict=True)
        else:
            stored = set(source.snapshot_ids())
            order = [snapshot_id for snapshot_id in dict.fromkeys(snapshot_ids) if snapshot_id in stored]
        present = set(target.snapshot_ids())
        translated: dict[str, tuple[str, int]] = {}  # source blob id -> (target id, stored size)
        with target.writer() as writer:
            for snapshot_id in order:
                if snapshot_id in present:
                    stats.skipped.append(snapshot_id)
                    continue
                snapshot = source.read_snapshot(snapshot_id)  # one manifest held at a time
                copied = _copy_one(source, writer, snapshot, translated, stats, progress)
                writer.flush()  # the blobs are durable: the manifest may now refer to them
                target.save_snapshot(copied)
                stats.copied.append(snapshot.id)
        stats.blobs_new = writer.stats.blobs_new
        stats.blobs_deduplicated = writer.stats.blobs_deduplicated
        stats.bytes_added = writer.stats.bytes_added
    stats.seconds = round(time.monotonic() - started, 3)
    return stats


def _copy_one(
    source: Repository,
    writer: RepositoryWriter,
    snapshot: Snapshot,
    translated: dict[str, tuple[str, int]],
    stats: CopyStats,
    progress: Progress | None,
) -> Snapshot:
    streams = []
    for stream in snapshot.streams:
        todo = list(dict.fromkeys(ref.id for ref in stream.blobs if ref.id not in translated))
        for blob_id, data in source.read_blobs(todo):
            ref = writer.add_blob(data)
            translated[blob_id] = (ref.id, ref.size)
            stats.blobs_read += 1
            stats.raw_bytes_read += len(data)
            if progress:
                progress(len(data))
        streams.append(_translate(stream, translated))
    return snapshot.model_copy(update={"streams": streams})


def _translate(stream: Stream, translated: dict[str, tuple[str, int]]) -> Stream:
    blobs = [
        BlobRef(
            id=translated[ref.id][0],
            size=translated[ref.id][1],
            raw_size=ref.raw_size,
            records=ref.records,
            zone_min=ref.zone_min,
            zone_max=ref.zone_max,
        )
        for ref in stream.blobs
    ]
    return Stream(name=stream.name, attributes=stream.attributes, blobs=blobs)
