"""``repair``: bring a damaged repository back to a state where ``check`` passes (restic's verbs).

* ``repair_index``: rebuild the index from the packs' own trailers only (two ranged reads per
  pack), writing index files as it goes (bounded memory: ``PACKS_PER_INDEX_FILE`` entries at a
  time), then delete the old index files: readers see the old index, then old and new (harmless
  duplicates), then the new one; never no index.
* ``salvage_packs``: copy the blobs of damaged packs (truncated, bytes flipped, trailer lost)
  that still decode and verify into new packs, index them, then delete the damaged packs and
  rebuild the index; what could not be read shows up in ``damaged_snapshots``.
* ``damaged_snapshots``: every snapshot that needs a missing or damaged blob, with the streams
  (tables) that lose records and the key ranges (zone maps) of the lost blobs, plus manifests
  that cannot be read at all; ``forget_snapshots`` removes the ones the operator gives up.

Callers hold the exclusive lock for ``repair_index``, ``salvage_packs`` and ``forget_snapshots``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import zstandard
from pydantic import BaseModel, Field, ValidationError

from lifeboat.errors import CorruptBlob, CorruptRepository
from lifeboat.repo.backends.base import Backend
from lifeboat.repo.blobs import compress, decode_blob, decompress
from lifeboat.repo.config import (
    CONFIG_FILE,
    DAMAGED_DIR,
    DATA_DIR,
    INDEX_DIR,
    KEYS_DIR,
    RepoConfig,
    basename,
    pack_name,
)
from lifeboat.repo.crypto import DecryptionFailed
from lifeboat.repo.index import IndexFile, PackEntry, carried_forward, superseded
from lifeboat.repo.keys import encode_config, key_file_problem, unlock
from lifeboat.repo.packs import PackBuilder, PackedBlob, read_pack_trailer

if TYPE_CHECKING:
    from lifeboat.repo.check import CheckReport
    from lifeboat.repo.repository import Repository

PACKS_PER_INDEX_FILE = 512


class IndexRepair(BaseModel):
    """What ``repair index`` did (``--json``)."""

    packs_indexed: int = 0
    packs_unreadable: dict[str, str] = Field(default_factory=dict)  # pack id -> why its trailer failed
    index_files_written: int = 0
    index_files_removed: int = 0


def repair_index(repo: Repository) -> IndexRepair:
    """Replace every index file by index files rebuilt from the pack trailers.

    A stored pack whose trailer cannot be read keeps the entries the old index files (those that
    still decode) give it, so that ``salvage_packs`` can still find its readable blobs.
    """
    report = IndexRepair()
    old = {info.name for info in repo.backend.list(INDEX_DIR)}
    supersedes = carried_forward(_decodable_index_files(repo, old))
    previous: dict[str, PackEntry] | None = None
    written: set[str] = set()
    batch: list[PackEntry] = []
    for info in repo.backend.list(DATA_DIR):
        pack_id = basename(info.name)
        try:
            batch.append(
                PackEntry(
                    pack_id, info.size, read_pack_trailer(repo.backend, repo.sealer, pack_id, info.size)
                )
            )
        except (CorruptRepository, FileNotFoundError) as exc:
            report.packs_unreadable[pack_id] = str(exc)
            previous = _indexed_packs(repo) if previous is None else previous
            if pack_id in previous:
                batch.append(previous[pack_id])
            continue
        report.packs_indexed += 1
        if len(batch) >= PACKS_PER_INDEX_FILE:
            written.add(_store(repo, batch, supersedes if not written else []))
            batch = []
    if batch or not written:
        written.add(_store(repo, batch, supersedes if not written else []))
    report.index_files_written = len(written)
    for name in sorted(old - written):
        repo.backend.delete(name)
        report.index_files_removed += 1
    repo.load_index()
    return report


def _decodable_index_files(repo: Repository, names: set[str]) -> list[IndexFile]:
    files = []
    for name in sorted(names):
        try:
            files.append(repo.read_index_file(name, repo.backend.get(name)))
        except (FileNotFoundError, DecryptionFailed, ValueError, KeyError, TypeError, zstandard.ZstdError):
            files.append(IndexFile(basename(name), []))  # damaged: replaced all the same
    return files


def _store(repo: Repository, entries: list[PackEntry], supersedes: list[str] | None = None) -> str:
    name, data = repo.encode_index_file(entries, supersedes or ())
    repo.backend.put(name, data)
    return name


class PackSalvage(BaseModel):
    """What ``repair packs`` did (``--json``)."""

    packs_damaged: list[str] = Field(default_factory=list)
    blobs_salvaged: int = 0
    blobs_lost: list[str] = Field(default_factory=list)
    packs_written: int = 0
    index: IndexRepair | None = None


PACK_KINDS = ("pack-size", "pack-hash", "pack-trailer", "damaged-blob")


def salvage_packs(repo: Repository, report: CheckReport) -> PackSalvage:
    """Salvage the damaged packs a ``check --read-data`` report names (see the module docstring)."""
    result = PackSalvage(
        packs_damaged=sorted({f.pack_id for f in report.findings if f.kind in PACK_KINDS and f.pack_id})
    )
    if not result.packs_damaged:
        return result
    entries = _indexed_packs(repo)
    builder, written = PackBuilder(), []
    for pack_id in result.packs_damaged:
        for blob in entries[pack_id].blobs if pack_id in entries else []:
            try:
                body = repo.backend.get(pack_name(pack_id), blob.offset, blob.length)
                decode_blob(repo.keys, repo.sealer, blob.id, body, blob.raw_size)
            except (CorruptBlob, FileNotFoundError):
                result.blobs_lost.append(blob.id)
                continue
            builder.add(blob.id, body, blob.raw_size)
            result.blobs_salvaged += 1
            if builder.size >= repo.config.pack_size:
                written.append(_store_pack(repo, builder))
                builder = PackBuilder()
    if len(builder):
        written.append(_store_pack(repo, builder))
    if written:
        _store(repo, written)  # the salvaged blobs are durable before any damaged pack goes
    result.packs_written = len(written)
    for pack_id in result.packs_damaged:
        repo.backend.delete(pack_name(pack_id))
    result.index = repair_index(repo)
    return result


def _indexed_packs(repo: Repository) -> dict[str, PackEntry]:
    """Pack id -> entry, from the index files that still decode (a truncated pack has no trailer)."""
    sizes: dict[str, int] = {}
    packs: dict[str, dict[str, PackedBlob]] = {}
    files = _decodable_index_files(repo, {info.name for info in repo.backend.list(INDEX_DIR)})
    replaced = superseded(files)
    for entry in (entry for file in files if file.id not in replaced for entry in file.packs):
        sizes[entry.id] = entry.size
        packs.setdefault(entry.id, {}).update({blob.id: blob for blob in entry.blobs})
    return {
        pack_id: PackEntry(pack_id, sizes[pack_id], list(blobs.values())) for pack_id, blobs in packs.items()
    }


def _store_pack(repo: Repository, builder: PackBuilder) -> PackEntry:
    sealed = builder.seal(repo.sealer)
    repo.backend.put(pack_name(sealed.id), sealed.data)
    return PackEntry(sealed.id, len(sealed.data), sealed.blobs)


class StreamDamage(BaseModel):
    stream: str
    key: str | None = None  # the column the zone maps are of (stream attribute "key"), if any
    blobs_lost: int
    records_lost: int
    key_ranges: list[tuple[str | None, str | None]] = Field(default_factory=list)  # zone maps of lost blobs


class SnapshotDamage(BaseModel):
    snapshot: str
    readable: bool = True  # False: the manifest itself cannot be read
    reason: str = ""
    streams: list[StreamDamage] = Field(default_factory=list)


def damaged_snapshots(repo: Repository, report: CheckReport) -> list[SnapshotDamage]:
    """Per snapshot, what a ``check`` report says it lost; undecodable manifests included."""
    damaged: list[SnapshotDamage] = []
    for finding in report.findings:
        if finding.kind == "bad-snapshot":
            damaged.extend(
                SnapshotDamage(snapshot=snapshot_id, readable=False, reason=finding.message)
                for snapshot_id in finding.snapshot_ids
            )
    lost = set(report.damaged_blobs)
    unreadable = {item.snapshot for item in damaged}
    for snapshot_id in report.affected_snapshots:
        if snapshot_id in unreadable:
            continue
        snapshot = repo.read_snapshot(snapshot_id)
        entry = SnapshotDamage(snapshot=snapshot_id, reason="needs missing or damaged blobs")
        for stream in snapshot.streams:
            refs = [ref for ref in stream.blobs if ref.id in lost]
            if refs:
                entry.streams.append(
                    StreamDamage(
                        stream=stream.name,
                        key=stream.attributes.get("key"),
                        blobs_lost=len(refs),
                        records_lost=sum(ref.records for ref in refs),
                        key_ranges=[(ref.zone_min, ref.zone_max) for ref in refs],
                    )
                )
        damaged.append(entry)
    return sorted(damaged, key=lambda item: item.snapshot)


def forget_snapshots(repo: Repository, snapshot_ids: list[str]) -> None:
    """Delete the manifests of damaged snapshots (their intact blobs go at the next prune)."""
    for snapshot_id in snapshot_ids:
        repo.backend.delete(f"snapshots/{snapshot_id}")
        repo.backend.delete(damage_mark_name(snapshot_id))


def damage_mark_name(snapshot_id: str) -> str:
    return f"{DAMAGED_DIR}{snapshot_id}"


def _mark_aad(snapshot_id: str) -> bytes:
    return b"lifeboat:damaged:" + snapshot_id.encode("ascii")


def mark_damaged(repo: Repository, damaged: list[SnapshotDamage]) -> None:
    """Record which snapshots are damaged (``damaged/<id>``), and drop marks of snapshots that are
    whole again (a later backup stored their lost blobs) or gone: the marks follow the last repair."""
    wanted = {item.snapshot: item for item in damaged if item.readable}
    for item in wanted.values():
        payload = compress(item.model_dump_json().encode())
        repo.backend.put(damage_mark_name(item.snapshot), repo.sealer.seal(payload, _mark_aad(item.snapshot)))
    for info in repo.backend.list(DAMAGED_DIR):
        if basename(info.name) not in wanted:
            repo.backend.delete(info.name)


def damage_marks(repo: Repository) -> dict[str, str]:
    """Snapshot id -> why it is marked damaged (a mark that cannot be opened counts, as such)."""
    marks = {}
    for info in repo.backend.list(DAMAGED_DIR):
        snapshot_id = basename(info.name)
        try:
            item = SnapshotDamage.model_validate_json(
                decompress(repo.sealer.open(repo.backend.get(info.name), _mark_aad(snapshot_id)))
            )
        except FileNotFoundError:
            continue
        except (DecryptionFailed, ValueError, zstandard.ZstdError):
            marks[snapshot_id] = "marked damaged (the mark itself cannot be read)"
            continue
        lost = ", ".join(f"{s.stream} ({s.records_lost} rows)" for s in item.streams)
        marks[snapshot_id] = f"marked damaged: loses {lost}" if lost else "marked damaged"
    return marks


def repair_config(backend: Backend, passphrase: str | None) -> RepoConfig:
    """Rewrite a damaged ``config`` from the copy of the settings a version-2 key file seals.

    Without a repository (the config is what is damaged): unlock a key file with ``passphrase``,
    validate the settings it holds, and write the config again (the one file this replaces).
    """
    _, keys = unlock(backend, passphrase)
    if keys.settings is None:
        raise CorruptRepository(
            f"cannot rebuild the config of {backend.url}: the key file predates format 2 and holds no copy "
            "of the settings; restore `config` from a copy of the repository"
        )
    try:
        config = RepoConfig.model_validate(keys.settings)
    except ValidationError as exc:
        raise CorruptRepository(f"the settings in the key file of {backend.url} are invalid") from exc
    backend.put(CONFIG_FILE, encode_config(config, keys))
    return config


def damaged_key_files(repo: Repository) -> list[str]:
    """Key files that are not well-formed (``check``'s ``bad-key-file``)."""
    return sorted(
        info.name
        for info in repo.backend.list(KEYS_DIR)
        if key_file_problem(repo.backend, info.name, info.size) is not None
    )


def remove_key_files(repo: Repository, names: list[str]) -> None:
    """Delete damaged key files; refuses to delete the one that opened ``repo``."""
    if repo.key_file in names:
        raise CorruptRepository(
            f"refusing to remove {repo.key_file}: it is the key file that opened the repository"
        )
    for name in names:
        repo.backend.delete(name)
