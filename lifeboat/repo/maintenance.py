"""Repairs and housekeeping that rewrite repository metadata. Callers hold the exclusive lock.

Rebuilding the index from the packs' own trailers. Prune lives in ``prune.py``; a future copy
between repositories sharing ids (``Repository.init(share_ids_with=)``) is a blob transfer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from lifeboat.errors import CorruptRepository
from lifeboat.repo.config import DATA_DIR, INDEX_DIR, basename
from lifeboat.repo.index import PackEntry
from lifeboat.repo.packs import read_pack_trailer

if TYPE_CHECKING:
    from lifeboat.repo.parts import OpenRepository


class RebuildReport(BaseModel):
    packs_indexed: list[str] = Field(default_factory=list)  # packs the new index file lists
    packs_unreadable: dict[str, str] = Field(default_factory=dict)  # pack id -> why its trailer failed
    index_files_removed: list[str] = Field(default_factory=list)


def rebuild_index(repo: OpenRepository, *, full: bool = False) -> RebuildReport:
    """Index packs from their trailers: the unindexed ones (crash leftovers become reusable), or with
    ``full`` every pack, replacing all index files (after a damaged or lost index) unless some
    pack's trailer is unreadable.

    The new index file is written before any old one is deleted, so a crash loses nothing.
    """
    report = RebuildReport()
    known = repo.index.packs()
    entries = []
    for info in repo.backend.list(DATA_DIR):
        pack_id = basename(info.name)
        if not full and known.get(pack_id) == info.size:
            continue
        try:
            blobs = read_pack_trailer(repo.backend, repo.sealer, pack_id, info.size)
        except CorruptRepository as exc:
            report.packs_unreadable[pack_id] = str(exc)
            continue
        entries.append(PackEntry(pack_id, info.size, blobs))
        report.packs_indexed.append(pack_id)
    # Old index files go only when every pack was re-read: they may be all that still lists the
    # blobs of a pack whose trailer is damaged.
    replace_old = full and not report.packs_unreadable
    old_index_files = [info.name for info in repo.backend.list(INDEX_DIR)] if replace_old else []
    if entries:
        supersedes = [basename(name) for name in sorted(old_index_files)]
        new_name, data = repo.encode_index_file(entries, supersedes)
        repo.backend.put(new_name, data)
        old_index_files = [name for name in old_index_files if name != new_name]
    for name in old_index_files:
        repo.backend.delete(name)
        report.index_files_removed.append(name)
    repo.load_index()
    return report
