"""Content-defined, record-aligned chunking.

A stream of records (e.g. COPY text lines) is cut into blobs only between records. Record ``r``
ends the current blob when the blob has reached ``min_size`` and::

    crc32(r, seed) < len(r) * 2**32 // (avg_size - min_size)

i.e. each record is a boundary with probability proportional to its length, so blobs average
about ``avg_size`` whatever the record sizes, and the decision depends only on the record's own
bytes and the bytes since the last cut. After an insertion or deletion the boundaries fall back
into step at the first boundary record past the change: unchanged runs of records yield
byte-identical blobs, which deduplicate. A blob is also cut before a record that would push it
over ``max_size`` (a single record larger than ``max_size`` becomes a blob of its own).

The per-record work is two C calls (``len``, ``zlib.crc32``) and a few integer operations; the
bytes themselves are only touched by C code (hashing, joining), never by a Python loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

from lifeboat.repo.config import ChunkerParams


@dataclass(frozen=True, slots=True)
class Chunk:
    """One blob's plaintext: whole records, their count and the zone map (min/max record key)."""

    data: bytes
    records: int
    zone_min: str | None = None
    zone_max: str | None = None


class RecordChunker:
    """Feed batches of records, collect finished chunks; memory stays below ``max_size`` + one batch.

    Not thread-safe: use one chunker per stream (the repository writer does).
    """

    def __init__(self, params: ChunkerParams, seed: int = 0) -> None:
        self.params = params
        self._seed = seed & 0xFFFFFFFF
        self._scale = 2**32 // (params.avg_size - params.min_size)
        self._parts: list[bytes] = []
        self._keys: list[str] = []
        self._size = 0
        self._keyed: bool | None = None

    def feed(self, records: Sequence[bytes], keys: Sequence[str] | None = None) -> list[Chunk]:
        """Add ``records`` (with one sort key each, or none at all) and return the chunks they complete."""
        if keys is not None and len(keys) != len(records):
            raise ValueError(f"{len(records)} records but {len(keys)} keys")
        self._check_keying(keys is not None)
        sizes = list(map(len, records))
        hashes = list(map(zlib.crc32, records, repeat(self._seed, len(records))))
        min_size, max_size, scale = self.params.min_size, self.params.max_size, self._scale
        chunks: list[Chunk] = []
        size, start = self._size, 0
        for index, (record_size, record_hash) in enumerate(zip(sizes, hashes, strict=True)):
            if size and size + record_size > max_size:
                chunks.append(self._cut(records, keys, start, index))
                start, size = index, 0
            size += record_size
            if size >= min_size and (record_hash < record_size * scale or size >= max_size):
                chunks.append(self._cut(records, keys, start, index + 1))
                start, size = index + 1, 0
        if start < len(records):
            self._parts.extend(records[start:])
            if keys is not None:
                self._keys.extend(keys[start:])
        self._size = size
        return chunks

    def finish(self) -> Chunk | None:
        """The last, possibly short, chunk (``None`` when nothing is pending)."""
        if not self._parts:
            return None
        return self._cut([], [] if self._keyed else None, 0, 0)

    def _check_keying(self, keyed: bool) -> None:
        if self._keyed is None:
            self._keyed = keyed
        elif self._keyed != keyed:
            raise ValueError("a stream's records must either all have keys or none")

    def _cut(self, records: Sequence[bytes], keys: Sequence[str] | None, start: int, stop: int) -> Chunk:
        """Build a chunk from the pending records plus ``records[start:stop]`` and reset the pending state."""
        parts = self._parts
        parts.extend(records[start:stop])
        data = b"".join(parts)
        count = len(parts)
        zone_min = zone_max = None
        if keys is not None:
            chunk_keys = self._keys
            chunk_keys.extend(keys[start:stop])
            zone_min, zone_max = min(chunk_keys), max(chunk_keys)
        self._parts, self._keys, self._size = [], [], 0
        return Chunk(data, count, zone_min, zone_max)
