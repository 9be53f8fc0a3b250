"""The index: which pack holds each blob, where, and how big. Loaded whole into memory.

Index file (``index/<sha256 of the file>``)::

    seal(zstd(JSON {"version": 1, "packs": [{"id", "size", "blobs": [PackedBlob...]}]}), aad="lifeboat:index")

Index files are only ever added (and, by a future prune, replaced); a blob listed by several
files or packs is fine: any listed copy may be read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lifeboat.repo.blobs import compress, decompress
from lifeboat.repo.crypto import Sealer
from lifeboat.repo.packs import PackedBlob

INDEX_AAD = b"lifeboat:index"


@dataclass(frozen=True, slots=True)
class BlobLocation:
    pack_id: str
    offset: int
    length: int
    raw_size: int


@dataclass(frozen=True)
class PackEntry:
    """One pack as an index file lists it."""

    id: str
    size: int
    blobs: list[PackedBlob]


def encode_index(sealer: Sealer, packs: Iterable[PackEntry]) -> bytes:
    document = {
        "version": 1,
        "packs": [{"id": p.id, "size": p.size, "blobs": [b.to_json() for b in p.blobs]} for p in packs],
    }
    return sealer.seal(compress(json.dumps(document, separators=(",", ":")).encode()), INDEX_AAD)


def decode_index(sealer: Sealer, data: bytes) -> list[PackEntry]:
    """Decode an index file; raises ``DecryptionFailed``, zstd, JSON or key errors on damage."""
    document = json.loads(decompress(sealer.open(data, INDEX_AAD)))
    return [
        PackEntry(str(p["id"]), int(p["size"]), [PackedBlob.from_json(b) for b in p["blobs"]])
        for p in document["packs"]
    ]


class Index:
    """Blob id -> location, plus pack id -> size; thread-safe for concurrent readers and adders."""

    def __init__(self) -> None:
        self._blobs: dict[str, BlobLocation] = {}
        self._packs: dict[str, int] = {}
        self._lock = threading.Lock()

    def add_pack(self, pack: PackEntry) -> None:
        with self._lock:
            self._packs[pack.id] = pack.size
            for blob in pack.blobs:
                self._blobs.setdefault(
                    blob.id, BlobLocation(pack.id, blob.offset, blob.length, blob.raw_size)
                )

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def get(self, blob_id: str) -> BlobLocation | None:
        return self._blobs.get(blob_id)

    def blob_ids(self) -> Iterator[str]:
        with self._lock:  # a writer may publish packs meanwhile
            return iter(list(self._blobs))

    def packs(self) -> dict[str, int]:
        """Pack id -> size in bytes, for every pack some index file lists."""
        with self._lock:
            return dict(self._packs)
