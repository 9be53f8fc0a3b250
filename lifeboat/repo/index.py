"""The index: which pack holds each blob, where, and how big. Loaded whole into memory.

Index file, format version 2 (docs/FORMAT.md §7)::

    index/<name> = seal(P, aad = "lifeboat:index:" || name),  name = hex SHA-256 of P
    P            = zstd(JSON {"version": 2, "packs": [{"id", "size", "blobs": [PackedBlob...]}]})

so an index file opens only under its own name and its name is checked against its content on
load. Format version 1 named the file by the SHA-256 of the sealed bytes and sealed with the
fixed associated data ``"lifeboat:index"``; it is still read (and checked against its name).

Index files are only ever added (and, by prune, replaced); a blob listed by several files or
packs is fine: any listed copy may be read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from lifeboat.repo.blobs import compress, decompress
from lifeboat.repo.crypto import DecryptionFailed, Sealer
from lifeboat.repo.packs import PackedBlob

INDEX_AAD_V1 = b"lifeboat:index"


class IndexNameMismatch(ValueError):
    """An index file's content does not belong to its name (renamed, replaced or damaged)."""


def index_aad(index_id: str) -> bytes:
    return b"lifeboat:index:" + index_id.encode("ascii")


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


MAX_SUPERSEDED = 100_000  # ids kept in a "supersedes" list (years of daily backups and weekly prunes)


def encode_index(
    sealer: Sealer, packs: Iterable[PackEntry], version: int = 2, supersedes: Sequence[str] = ()
) -> tuple[str, bytes]:
    """(index file id, file bytes) in the rules of repository format ``version``.

    ``supersedes``: ids of the index files this one replaces (prune, repair index), so that one of
    them put back later is recognised and ignored (docs/FORMAT.md §7).
    """
    document: dict[str, object] = {
        "version": 2 if version >= 2 else 1,
        "packs": [{"id": p.id, "size": p.size, "blobs": [b.to_json() for b in p.blobs]} for p in packs],
    }
    if supersedes:
        document["supersedes"] = list(dict.fromkeys(supersedes))[:MAX_SUPERSEDED]
    payload = compress(json.dumps(document, separators=(",", ":")).encode())
    if version < 2:
        data = sealer.seal(payload, INDEX_AAD_V1)
        return hashlib.sha256(data).hexdigest(), data
    index_id = hashlib.sha256(payload).hexdigest()
    return index_id, sealer.seal(payload, index_aad(index_id))


@dataclass(frozen=True)
class IndexFile:
    """One decoded index file: the packs it lists and the ids of the index files it replaced."""

    id: str
    packs: list[PackEntry]
    supersedes: tuple[str, ...] = ()


def decode_index(sealer: Sealer, index_id: str, data: bytes, version: int = 2) -> list[PackEntry]:
    """The packs of the index file ``index/<index_id>`` (see ``decode_index_file``)."""
    return decode_index_file(sealer, index_id, data, version).packs


def decode_index_file(sealer: Sealer, index_id: str, data: bytes, version: int = 2) -> IndexFile:
    """Decode the index file ``index/<index_id>``, checking it belongs to its name.

    Raises ``IndexNameMismatch`` or ``DecryptionFailed`` (a ``ValueError`` and an ``Exception``),
    zstd, JSON or key errors on damage. A version-1 repository also accepts version-2 index files
    (authenticated the same way): an interrupted ``upgrade-repository`` leaves both kinds.
    """
    if version < 2 and hashlib.sha256(data).hexdigest() == index_id:
        payload = sealer.open(data, INDEX_AAD_V1)
    else:
        try:
            payload = sealer.open(data, index_aad(index_id))
        except DecryptionFailed as exc:
            raise IndexNameMismatch(
                f"it does not authenticate under its name ({exc}): damaged or renamed"
            ) from exc
        if hashlib.sha256(payload).hexdigest() != index_id:
            raise IndexNameMismatch(f"its content does not match the name {index_id}")
    document = json.loads(decompress(payload))
    packs = [
        PackEntry(str(p["id"]), int(p["size"]), [PackedBlob.from_json(b) for b in p["blobs"]])
        for p in document["packs"]
    ]
    return IndexFile(index_id, packs, tuple(str(i) for i in document.get("supersedes", ())))


def superseded(files: Iterable[IndexFile]) -> set[str]:
    """Ids that some index file says it replaced: present again, such a file is ignored."""
    return {old for file in files for old in file.supersedes}


def carried_forward(replaced: Iterable[IndexFile]) -> list[str]:
    """The ``supersedes`` list of a file replacing ``replaced``: their ids, then what they replaced."""
    files = list(replaced)
    return list(dict.fromkeys([*sorted(f.id for f in files), *(i for f in files for i in f.supersedes)]))


class Index:
    """Blob id -> location, plus pack id -> size; thread-safe for concurrent readers and adders.

    ``stored`` (pack id -> size, from one listing of ``data/``) makes the index prefer, for a blob
    listed in several packs, a copy whose pack is stored at the size the index says: after a pack
    was lost and its blobs stored again, readers find the new copy whatever the file order.
    """

    def __init__(self, stored: dict[str, int] | None = None) -> None:
        self._blobs: dict[str, BlobLocation] = {}
        self._packs: dict[str, int] = {}
        self._stored = stored
        self._lock = threading.Lock()

    def add_pack(self, pack: PackEntry, *, preferred: bool = False) -> None:
        """Add a pack's blobs; ``preferred`` (a pack just stored) replaces known locations of them."""
        with self._lock:
            self._packs[pack.id] = pack.size
            for blob in pack.blobs:
                known = self._blobs.get(blob.id)
                if known is None or preferred or not self._is_stored(known.pack_id):
                    self._blobs[blob.id] = BlobLocation(pack.id, blob.offset, blob.length, blob.raw_size)

    def _is_stored(self, pack_id: str) -> bool:
        return self._stored is None or self._stored.get(pack_id) == self._packs.get(pack_id)

    def pack_size(self, pack_id: str) -> int | None:
        """The size the index gives a pack, None when no index file lists it."""
        return self._packs.get(pack_id)

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
