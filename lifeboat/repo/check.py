"""``check``: structural checks of a whole repository, optionally reading data; and the per-snapshot pre-restore check.

Each problem is a ``Finding`` with a stable ``kind``; the report also maps every unreadable blob
to the snapshots that need it, so an operator knows which snapshots a damage costs.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

import zstandard
from pydantic import BaseModel, Field

from lifeboat.errors import CorruptBlob, CorruptRepository
from lifeboat.repo.blobs import decode_blob
from lifeboat.repo.config import DATA_DIR, INDEX_DIR, KEYS_DIR, basename, pack_name
from lifeboat.repo.crypto import DecryptionFailed
from lifeboat.repo.index import IndexFile, PackEntry, superseded
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.packs import read_pack_trailer

if TYPE_CHECKING:
    from lifeboat.repo.parts import OpenRepository

Severity = Literal["error", "warning", "info"]
READ_THREADS = 4
# Each pack reader holds a whole pack (up to 32 MiB): with 4, ``check --read-data`` peaked at
# 340 MB at 20,000 agents, with 2 at 267 MB in the same time (hashing and decoding are CPU-bound).
PACK_READ_THREADS = 2


class Finding(BaseModel):
    severity: Severity
    kind: str  # e.g. missing-blob, damaged-blob, missing-pack, pack-size, pack-hash, pack-trailer, ...
    message: str
    pack_id: str | None = None
    blob_ids: list[str] = Field(default_factory=list)
    snapshot_ids: list[str] = Field(default_factory=list)


class CheckReport(BaseModel):
    findings: list[Finding] = Field(default_factory=list)
    snapshots_checked: int = 0
    index_files_checked: int = 0
    packs_checked: int = 0
    packs_read: int = 0
    blobs_checked: int = 0
    blobs_read: int = 0
    damaged_blobs: dict[str, list[str]] = Field(default_factory=dict)  # blob id -> snapshot ids needing it

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def affected_snapshots(self) -> list[str]:
        """Snapshots that need a damaged blob, and snapshots whose manifest cannot be read."""
        unreadable = {s for f in self.findings if f.kind == "bad-snapshot" for s in f.snapshot_ids}
        return sorted(
            unreadable | {snapshot_id for ids in self.damaged_blobs.values() for snapshot_id in ids}
        )

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)


class _BlobUsers:
    """Blob id -> snapshots needing it, built from the manifests."""

    def __init__(self, snapshots: Iterable[Snapshot] = ()) -> None:
        self.by_blob: dict[str, set[str]] = defaultdict(set)
        for snapshot in snapshots:
            self.add(snapshot)

    def add(self, snapshot: Snapshot) -> None:
        for blob_id in snapshot.blob_ids():
            self.by_blob[blob_id].add(snapshot.id)

    def of(self, blob_ids: Iterable[str]) -> list[str]:
        return sorted({snapshot_id for blob_id in blob_ids for snapshot_id in self.by_blob.get(blob_id, ())})


ReadProgress = Callable[[int, int], None]


def check_repository(
    repo: OpenRepository,
    *,
    read_data: bool,
    subset_percent: float | None,
    seed: int | None,
    progress: ReadProgress | None = None,
) -> CheckReport:
    """``progress(bytes_done, bytes_total)`` hears of each pack read with ``read_data``."""
    report = CheckReport()
    users = _BlobUsers()
    _load_snapshots(repo, report, users)
    packs = _load_index_files(repo, report, users)
    indexed_blobs = {blob.id for entry in packs.values() for blob in entry.blobs}
    report.blobs_checked = len(indexed_blobs)

    missing = sorted(set(users.by_blob) - indexed_blobs)
    for blob_id in missing:
        _damaged(report, users, blob_id, "missing-blob", f"blob {blob_id} is needed but not in any index")

    stored = {basename(info.name): info.size for info in repo.backend.list(DATA_DIR)}
    present = _check_pack_files(report, users, packs, stored)
    _check_keys_and_locks(repo, report)
    _check_trailers(repo, report, users, present)
    if read_data:
        chosen = _choose(sorted(present), subset_percent, seed)
        _read_packs(repo, report, users, [present[pack_id] for pack_id in chosen], progress)
    return report


def _load_snapshots(repo: OpenRepository, report: CheckReport, users: _BlobUsers) -> None:
    """Read every snapshot, keeping only which blobs it uses: a manifest at 20,000 agents is ~30 MB
    once parsed, so holding them all would grow with the number of snapshots."""
    for snapshot_id in repo.snapshot_ids():
        try:
            users.add(repo.read_snapshot(snapshot_id))
        except CorruptRepository as exc:
            report.add(
                Finding(severity="error", kind="bad-snapshot", message=str(exc), snapshot_ids=[snapshot_id])
            )
            continue
        report.snapshots_checked += 1


def _load_index_files(repo: OpenRepository, report: CheckReport, users: _BlobUsers) -> dict[str, PackEntry]:
    """Pack id -> what the index files say about it (entries of several files merged); index files
    another one supersedes (replaced by a prune or repair, and present again) are named, not used."""
    files: list[IndexFile] = []
    for info in repo.backend.list(INDEX_DIR):
        data = repo.backend.get(info.name)
        report.index_files_checked += 1
        try:
            files.append(repo.read_index_file(info.name, data))
        except (DecryptionFailed, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
            report.add(
                Finding(
                    severity="error",
                    kind="bad-index",
                    message=f"index file {info.name} cannot be decoded ({exc})",
                )
            )
    replaced = superseded(files)
    packs: dict[str, PackEntry] = {}
    for file in files:
        if file.id in replaced:
            report.add(
                Finding(
                    severity="warning",
                    kind="superseded-index",
                    message=f"index file index/{file.id} was replaced by a prune or repair and is present "
                    "again (left by an interrupted one, or put back): ignored; the next prune removes it",
                )
            )
            continue
        for entry in file.packs:
            known = packs.get(entry.id)
            if known is None:
                packs[entry.id] = entry
            else:
                merged = {blob.id: blob for blob in [*known.blobs, *entry.blobs]}
                packs[entry.id] = PackEntry(entry.id, entry.size, list(merged.values()))
    return packs


def _check_pack_files(
    report: CheckReport, users: _BlobUsers, packs: dict[str, PackEntry], stored: dict[str, int]
) -> dict[str, PackEntry]:
    """Compare indexed packs with the files present; returns the indexed packs whose file looks right.

    A blob of a missing or truncated pack that another, intact pack also holds (stored again by
    a later backup) is not lost: the finding stays (the index is stale) but names no snapshot.
    """
    present: dict[str, PackEntry] = {}
    intact = {
        blob.id
        for pack_id, entry in packs.items()
        if stored.get(pack_id) == entry.size
        for blob in entry.blobs
    }
    for pack_id, entry in sorted(packs.items()):
        report.packs_checked += 1
        blob_ids = [blob.id for blob in entry.blobs if blob.id not in intact]
        if pack_id not in stored:
            report.add(
                Finding(
                    severity="error",
                    kind="missing-pack",
                    message=f"pack {pack_id} is indexed but missing",
                    pack_id=pack_id,
                    blob_ids=blob_ids,
                    snapshot_ids=users.of(blob_ids),
                )
            )
            _mark(report, users, blob_ids)
        elif stored[pack_id] != entry.size:
            report.add(
                Finding(
                    severity="error",
                    kind="pack-size",
                    message=f"pack {pack_id} has {stored[pack_id]} bytes, the index says {entry.size}",
                    pack_id=pack_id,
                    blob_ids=blob_ids,
                    snapshot_ids=users.of(blob_ids),
                )
            )
            _mark(report, users, blob_ids)
        else:
            present[pack_id] = entry
    for pack_id in sorted(set(stored) - set(packs)):
        report.add(
            Finding(
                severity="info",
                kind="unindexed-pack",
                pack_id=pack_id,
                message=f"pack {pack_id} is in no index (left by an interrupted backup; prune removes it)",
            )
        )
    return present


def _check_keys_and_locks(repo: OpenRepository, report: CheckReport) -> None:
    """Key files that are not well-formed (skipped when opening) and lock files nobody can read."""
    from lifeboat.repo.keys import key_file_problem

    for info in repo.backend.list(KEYS_DIR):
        problem = key_file_problem(repo.backend, info.name, info.size)
        if problem is not None:
            report.add(
                Finding(
                    severity="error",
                    kind="bad-key-file",
                    message=f"key file {info.name} is damaged ({problem}); `lifeboat repair keys` removes it",
                )
            )
    for lock in repo.list_locks():
        if not lock.readable:
            report.add(
                Finding(
                    severity="warning",
                    kind="bad-lock",
                    message=f"lock file locks/{lock.id} cannot be read: it blocks every command that "
                    "locks; `lifeboat unlock --remove-all` removes it (when nothing runs)",
                )
            )


def _check_trailers(
    repo: OpenRepository, report: CheckReport, users: _BlobUsers, packs: dict[str, PackEntry]
) -> None:
    for pack_id, entry in packs.items():
        try:
            trailer = read_pack_trailer(repo.backend, repo.sealer, pack_id, entry.size)
        except CorruptRepository as exc:
            blob_ids = [blob.id for blob in entry.blobs]
            report.add(
                Finding(
                    severity="error",
                    kind="pack-trailer",
                    message=str(exc),
                    pack_id=pack_id,
                    blob_ids=blob_ids,
                    snapshot_ids=users.of(blob_ids),
                )
            )
            continue
        in_trailer = set(trailer)
        disagreeing = sorted(blob.id for blob in entry.blobs if blob not in in_trailer)
        if disagreeing:
            report.add(
                Finding(
                    severity="error",
                    kind="pack-trailer",
                    pack_id=pack_id,
                    blob_ids=disagreeing,
                    snapshot_ids=users.of(disagreeing),
                    message=f"pack {pack_id}: the index lists {len(disagreeing)} blob(s) its trailer does not",
                )
            )


def _choose(pack_ids: list[str], subset_percent: float | None, seed: int | None) -> list[str]:
    if subset_percent is None or subset_percent >= 100:
        return pack_ids
    if not subset_percent > 0:
        raise ValueError("subset_percent must be in (0, 100]")
    count = max(1, round(len(pack_ids) * subset_percent / 100)) if pack_ids else 0
    return sorted(random.Random(seed).sample(pack_ids, count))


def _read_packs(
    repo: OpenRepository,
    report: CheckReport,
    users: _BlobUsers,
    packs: list[PackEntry],
    progress: ReadProgress | None = None,
) -> None:
    total, done = sum(entry.size for entry in packs), 0
    with ThreadPoolExecutor(max_workers=PACK_READ_THREADS, thread_name_prefix="lifeboat-check") as pool:
        for entry, (findings, damaged, blobs_read) in zip(
            packs, pool.map(lambda entry: _read_pack(repo, entry), packs), strict=True
        ):
            done += entry.size
            if progress is not None:
                progress(done, total)
            report.packs_read += 1
            report.blobs_read += blobs_read
            for finding in findings:
                finding.snapshot_ids = users.of(finding.blob_ids)
                report.add(finding)
            _mark(report, users, damaged)


def _read_pack(repo: OpenRepository, entry: PackEntry) -> tuple[list[Finding], list[str], int]:
    """Read one whole pack: its hash, then every indexed blob in it. Runs in a worker thread."""
    try:
        data = repo.backend.get(pack_name(entry.id))
    except FileNotFoundError:
        ids = [blob.id for blob in entry.blobs]
        return (
            [
                Finding(
                    severity="error",
                    kind="missing-pack",
                    message=f"pack {entry.id} vanished",
                    pack_id=entry.id,
                    blob_ids=ids,
                )
            ],
            ids,
            0,
        )
    findings: list[Finding] = []
    if hashlib.sha256(data).hexdigest() != entry.id:
        findings.append(
            Finding(
                severity="error",
                kind="pack-hash",
                pack_id=entry.id,
                message=f"pack {entry.id} does not match its SHA-256 name",
            )
        )
    damaged = []
    for blob in entry.blobs:
        body = data[blob.offset : blob.offset + blob.length]
        try:
            decode_blob(repo.keys, repo.sealer, blob.id, body, blob.raw_size)
        except CorruptBlob as exc:
            damaged.append(blob.id)
            findings.append(
                Finding(
                    severity="error",
                    kind="damaged-blob",
                    message=f"{exc} (in pack {entry.id})",
                    pack_id=entry.id,
                    blob_ids=[blob.id],
                )
            )
    return findings, damaged, len(entry.blobs)


def _damaged(report: CheckReport, users: _BlobUsers, blob_id: str, kind: str, message: str) -> None:
    report.add(
        Finding(
            severity="error", kind=kind, message=message, blob_ids=[blob_id], snapshot_ids=users.of([blob_id])
        )
    )
    _mark(report, users, [blob_id])


def _mark(report: CheckReport, users: _BlobUsers, blob_ids: Iterable[str]) -> None:
    for blob_id in blob_ids:
        report.damaged_blobs[blob_id] = users.of([blob_id])


def verify_snapshot_blobs(
    repo: OpenRepository, snapshot: Snapshot, *, read_data: bool, blob_ids: Iterable[str] | None = None
) -> CheckReport:
    """What ``snapshot`` needs (or ``blob_ids`` of it) is indexed, its pack present at the right size; optionally read."""
    report = CheckReport(snapshots_checked=1)
    users = _BlobUsers([snapshot])
    needed = sorted(snapshot.blob_ids() if blob_ids is None else set(blob_ids))
    report.blobs_checked = len(needed)
    pack_sizes = repo.index.packs()
    packs_needed: dict[str, list[str]] = defaultdict(list)
    for blob_id in needed:
        location = repo.index.get(blob_id)
        if location is None:
            _damaged(report, users, blob_id, "missing-blob", f"blob {blob_id} is needed but not in any index")
        else:
            packs_needed[location.pack_id].append(blob_id)
    for pack_id, blob_ids in sorted(packs_needed.items()):
        report.packs_checked += 1
        try:
            size = repo.backend.size(pack_name(pack_id))
        except FileNotFoundError:
            report.add(
                Finding(
                    severity="error",
                    kind="missing-pack",
                    message=f"pack {pack_id} is missing",
                    pack_id=pack_id,
                    blob_ids=blob_ids,
                    snapshot_ids=[snapshot.id],
                )
            )
            _mark(report, users, blob_ids)
            continue
        if size != pack_sizes.get(pack_id):
            report.add(
                Finding(
                    severity="error",
                    kind="pack-size",
                    pack_id=pack_id,
                    blob_ids=blob_ids,
                    snapshot_ids=[snapshot.id],
                    message=f"pack {pack_id} has {size} bytes, the index says {pack_sizes.get(pack_id)}",
                )
            )
            _mark(report, users, blob_ids)
    if read_data:
        readable = [blob_id for blob_id in needed if blob_id not in report.damaged_blobs]
        with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="lifeboat-verify") as pool:
            for blob_id, problem in zip(readable, pool.map(_try_read(repo), readable), strict=True):
                report.blobs_read += 1
                if problem is not None:
                    _damaged(report, users, blob_id, "damaged-blob", problem)
    return report


def _try_read(repo: OpenRepository) -> Callable[[str], str | None]:
    def read(blob_id: str) -> str | None:
        try:
            repo.read_blob(blob_id)
        except CorruptBlob as exc:
            return str(exc)
        return None

    return read
