"""Content-defined, record-aligned chunking of line streams.

A record is one line: bytes ending in ``\\n`` with no other ``\\n`` (e.g. a COPY TEXT row). A
stream of records is cut into blobs only between records. Record ``r`` (its bytes without the
newline) ends the current blob when the blob holds at least ``min_size`` bytes and::

    crc32(r, seed) < (len(r) + 1) * (2**32 // (avg_size - min_size))

so each record is a boundary with a probability proportional to its length: blobs average
about ``avg_size`` whatever the record sizes, and the decision depends only on the record's own
bytes and the bytes since the previous cut. After an insertion or deletion the boundaries fall
back into step at the first boundary record past the change, so unchanged runs of records yield
byte-identical blobs, which deduplicate. A blob is also cut *before* a record that would push it
past ``max_size``, and after a record that reaches it (one huge record becomes a blob of its own).

Records need not be lines: :meth:`RecordChunker.feed_framed` takes a buffer of records together
with where each ends (e.g. binary COPY tuples, which may contain any byte). The rule is the same
with ``r`` the whole record and ``len(r)`` in place of ``len(r) + 1``.

*Key-aligned* streams (``RecordChunker(..., key_aligned=True)``, every record with a key; the
records of one key are consecutive) are cut only where the key changes, so no key's records
straddle two blobs: a blob ends after record ``r``, the last of its key's run, when the blob holds
at least ``min_size // KEYED_MIN_DIVISOR`` bytes and::

    crc32(r, seed) < g * (2**32 // (avg_size - min_size)) + 2**32 // KEYS_PER_BLOB

with ``g`` the bytes of that key's records in the blob: a run ends a blob with a probability
proportional to its size plus a fixed share per key, so blobs hold about ``avg_size`` bytes or
about ``KEYS_PER_BLOB`` keys, whichever comes first (a table with a few small rows per key gets
small blobs, and a changed key rebuilds little of its neighbourhood). ``max_size`` is applied
record by record as above, so only a blob that reaches it ends inside a key's run.

Speed: input arrives as buffers of whole lines, already split when the caller has split them
(a COPY batch splits once for its keys). ``bytes.split``, ``len`` and ``zlib.crc32`` run in C;
the Python loop does a few integer operations per blob, not per record; only records from the
one that reaches ``min_size`` to the boundary are hashed, lazily. Blob bytes are sliced out of
the input buffer, never assembled record by record; a blob spanning batches is joined once from
views of them.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import add, lt, mul, ne

from lifeboat.repo.config import ChunkerParams

NEWLINE = b"\n"
# Key-aligned streams (docs/FORMAT.md §10): a smaller minimum, and a fixed chance per key run.
KEYED_MIN_DIVISOR = 4
KEYS_PER_BLOB = 4

Key = str | bytes
Buffer = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Chunk:
    """One blob's plaintext: whole records, their count and the zone map (min/max record key)."""

    data: bytes
    records: int
    zone_min: str | None = None
    zone_max: str | None = None


class RecordChunker:
    """Feed buffers of whole lines, collect finished chunks.

    Memory: less than ``max_size`` pending plus the caller's batch. Not thread-safe: one chunker
    per stream. Keys (one per record, or none for the whole stream) feed the zone map; ``bytes``
    keys are decoded as UTF-8, whose byte order is the code point order ``str`` compares by.
    """

    def __init__(self, params: ChunkerParams, seed: int = 0, *, key_aligned: bool = False) -> None:
        self.params = params
        self._seed = seed & 0xFFFFFFFF
        self._scale = 2**32 // (params.avg_size - params.min_size)
        self._aligned = key_aligned
        self._min = params.min_size // KEYED_MIN_DIVISOR if key_aligned else params.min_size
        self._per_key = 2**32 // KEYS_PER_BLOB
        # key-aligned: the last held record's key, the bytes of its run in the current blob, and
        # whether the blob ends after it if the next record has another key
        self._last_key: Key | None = None
        self._run = 0
        self._run_ends_blob = False
        self._parts: list[Buffer] = []
        self._records = 0
        self._size = 0
        self._zone: tuple[Key, Key] | None = None
        self._keyed: bool | None = None

    def feed(
        self, data: bytes, keys: Sequence[Key] | None = None, lines: Sequence[bytes] | None = None
    ) -> list[Chunk]:
        """Add a buffer of whole lines (empty, or ending in ``\\n``); return the chunks it completes.

        ``lines``: the buffer's lines without their newlines when the caller split it already
        (``data.split(b"\\n")`` less the empty last item), so it is not split twice.
        """
        if not data:
            if keys:
                raise ValueError(f"0 records but {len(keys)} keys")
            return []
        if not data.endswith(NEWLINE):
            raise ValueError("a batch must hold whole lines: it does not end with a newline")
        if lines is None:
            lines = data.split(NEWLINE)
            lines.pop()
        if keys is not None and len(keys) != len(lines):
            raise ValueError(f"{len(lines)} records but {len(keys)} keys")
        self._check_keying(keys is not None)
        return self._cut_lines(data, lines, keys)

    def feed_framed(self, data: bytes, ends: Sequence[int], keys: Sequence[Key] | None = None) -> list[Chunk]:
        """Add a buffer of whole records that are not lines: ``ends[i]`` is where record ``i`` ends
        (strictly increasing, the last one ``len(data)``)."""
        if not ends:
            if data or keys:
                raise ValueError("a framed batch without record ends")
            return []
        if ends[-1] != len(data):
            raise ValueError("the last record must end at the end of the batch")
        if keys is not None and len(keys) != len(ends):
            raise ValueError(f"{len(ends)} records but {len(keys)} keys")
        self._check_keying(keys is not None)
        view = memoryview(data)
        records = [view[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        sizes = [end - start for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        if min(sizes) <= 0:
            raise ValueError("record ends must be strictly increasing")
        return self._cut(data, sizes, records, keys)

    def feed_records(self, records: Sequence[bytes], keys: Sequence[Key] | None = None) -> list[Chunk]:
        """Add records given one by one; each must end with its only ``\\n``."""
        data = b"".join(records)
        if data.count(NEWLINE) != len(records) or (records and not data.endswith(NEWLINE)):
            raise ValueError("every record must end with a newline and contain no other newline")
        if keys is not None and len(keys) != len(records):
            raise ValueError(f"{len(records)} records but {len(keys)} keys")
        return self.feed(data, keys)

    def finish(self) -> Chunk | None:
        """The last, possibly short, chunk (``None`` when nothing is pending)."""
        if not self._records:
            return None
        return self._emit(b"", 0, None)

    def _check_keying(self, keyed: bool) -> None:
        if self._aligned and not keyed:
            raise ValueError("a key-aligned stream needs a key for every record")
        if self._keyed is None:
            self._keyed = keyed
        elif self._keyed != keyed:
            raise ValueError("a stream's records must either all have keys or none")

    def _cut_lines(self, data: bytes, lines: Sequence[bytes], keys: Sequence[Key] | None) -> list[Chunk]:
        """Cut the buffer at boundaries found with C-level iterators and bisection, not a per-record loop."""
        sizes = list(map(add, map(len, lines), repeat(1)))  # record sizes, newline included
        return self._cut(data, sizes, lines, keys)

    def _cut(
        self, data: bytes, sizes: list[int], records: Sequence[Buffer], keys: Sequence[Key] | None
    ) -> list[Chunk]:
        """``records[i]``: the bytes whose CRC decides whether record ``i`` is a boundary (a line
        without its newline, or a whole framed record); ``sizes[i]``: its size in ``data``."""
        count = len(sizes)
        ends = list(accumulate(sizes))  # offset just past each record
        if ends[-1] != len(data):
            raise ValueError(f"the records add up to {ends[-1]} bytes, not the batch's {len(data)}")
        chunks: list[Chunk] = []
        runs = _KeyRuns(self, keys, ends) if self._aligned and keys is not None else None
        if runs is not None and runs.ends_held_blob:
            chunks.append(self._emit(b"", 0, None))  # the held run ended where this batch's key begins
        chunk_start = -self._size  # offset of the current chunk's first byte (negative: held bytes)
        first = 0  # first record not yet in a chunk
        while first < count:
            last = self._last_record(ends, sizes, records, chunk_start, first, runs)
            if last is None:
                break
            end = ends[last] if last >= 0 else 0  # last == -1: the held bytes alone form the chunk
            # Held records before it: a view, copied once when the chunk is joined.
            part = (memoryview(data) if self._parts else data)[max(chunk_start, 0) : end]
            chunks.append(self._emit(part, last + 1 - first, _slice(keys, first, last + 1)))
            chunk_start, first = end, last + 1
        if first < count:
            # A view (no copy): it keeps this batch alive until the chunk is emitted (< max_size later).
            self._hold(memoryview(data)[max(chunk_start, 0) :], count - first, _slice(keys, first, count))
            self._size = ends[-1] - chunk_start
            if runs is not None:
                runs.hold_last(records[-1], chunk_start)
        return chunks

    def _last_record(
        self,
        ends: list[int],
        sizes: list[int],
        records: Sequence[Buffer],
        chunk_start: int,
        first: int,
        runs: _KeyRuns | None = None,
    ) -> int | None:
        """Index of the record that ends the chunk starting at ``first``; None if beyond this batch.

        Equivalent to walking the records one by one and applying, to each record: cut before it
        if the chunk is not empty and it would exceed ``max_size``; then cut after it if the
        chunk reached ``min_size`` and the record is a boundary or the chunk reached ``max_size``.
        Only records from the one that reaches ``min_size`` to the first boundary are hashed
        (lazily, C-level iterators): none before ``min_size`` can end a chunk, and each record
        is hashed at most once, since the next chunk starts after the one found.
        """
        params = self.params
        forced: int | None = None
        at_max = bisect_left(ends, chunk_start + params.max_size, lo=first)  # first to reach max_size
        if at_max < len(ends):
            if ends[at_max] - chunk_start == params.max_size:
                forced = at_max  # exactly full: cut after it
            elif at_max > first or chunk_start < 0:
                forced = at_max - 1  # cut before the record that would overflow
            else:
                forced = at_max  # a lone record larger than max_size
        reach_min = bisect_left(ends, chunk_start + self._min, lo=first)
        stop = len(ends) if forced is None else forced + 1  # a boundary after a forced cut is moot
        if runs is not None:
            boundary = runs.first_boundary(records, reach_min, stop, chunk_start)
            return boundary if boundary is not None else forced
        if reach_min < stop:
            hashes = map(zlib.crc32, records[reach_min:stop], repeat(self._seed))
            thresholds = map(mul, sizes[reach_min:stop], repeat(self._scale))
            boundary = next(compress(range(reach_min, stop), map(lt, hashes, thresholds)), None)
            if boundary is not None:
                return boundary
        return forced

    def _hold(self, part: Buffer, records: int, keys: Sequence[Key] | None) -> None:
        self._parts.append(part)
        self._records += records
        self._zone = _merge_zone(self._zone, keys)

    def _emit(self, part: Buffer, records: int, keys: Sequence[Key] | None) -> Chunk:
        """A chunk of the held records plus ``part``; resets the held state."""
        if self._parts:
            self._parts.append(part)
            data = b"".join(self._parts)
        else:
            data = bytes(part)  # already bytes (the same object): only held parts are views
        zone = _merge_zone(self._zone, keys)
        chunk = Chunk(
            data, self._records + records, *(_key_text(key) for key in zone) if zone else (None, None)
        )
        self._parts, self._records, self._size, self._zone = [], 0, 0, None
        self._last_key, self._run, self._run_ends_blob = None, 0, False
        return chunk


class _KeyRuns:
    """Where the runs of equal keys of one batch end, and the key-aligned boundary test on them."""

    def __init__(self, chunker: RecordChunker, keys: Sequence[Key], ends: list[int]) -> None:
        self.chunker, self.keys, self.ends = chunker, keys, ends
        held = chunker._records > 0
        # the held run continues into this batch, or ended just before it
        continues = held and keys[0] == chunker._last_key
        self.ends_held_blob = held and not continues and chunker._run_ends_blob
        self.start = -chunker._run if continues else 0  # where the batch's first run starts
        # index of each record that is the last of its key's run (the batch's last one is not known yet)
        self.last_of_run = list(compress(range(len(keys) - 1), map(ne, keys[:-1], keys[1:])))

    def _run_start(self, position: int) -> int:
        """Offset where the run ending at ``last_of_run[position]`` starts."""
        return self.ends[self.last_of_run[position - 1]] if position else self.start

    def first_boundary(self, records: Sequence[Buffer], lo: int, stop: int, chunk_start: int) -> int | None:
        """The first record in ``[lo, stop)`` that ends its key's run and, by the test, the blob."""
        last_of_run, ends, chunker = self.last_of_run, self.ends, self.chunker
        for position in range(bisect_left(last_of_run, lo), bisect_left(last_of_run, stop)):
            index = last_of_run[position]
            run = ends[index] - max(self._run_start(position), chunk_start)
            if zlib.crc32(records[index], chunker._seed) < run * chunker._scale + chunker._per_key:
                return index
        return None

    def hold_last(self, last_record: Buffer, chunk_start: int) -> None:
        """Remember the held tail's last key, its run's bytes in the blob, and the test on it."""
        chunker, ends = self.chunker, self.ends
        run = ends[-1] - max(self._run_start(len(self.last_of_run)), chunk_start)
        chunker._last_key, chunker._run = self.keys[-1], run
        chunker._run_ends_blob = ends[-1] - chunk_start >= chunker._min and (
            zlib.crc32(last_record, chunker._seed) < run * chunker._scale + chunker._per_key
        )


def _slice(keys: Sequence[Key] | None, start: int, stop: int) -> Sequence[Key] | None:
    return None if keys is None else keys[start:stop]


def _merge_zone(zone: tuple[Key, Key] | None, keys: Sequence[Key] | None) -> tuple[Key, Key] | None:
    if not keys:
        return zone
    low, high = min(keys), max(keys)
    if zone is None:
        return low, high
    return min(zone[0], low), max(zone[1], high)


def _key_text(key: Key) -> str:
    if isinstance(key, str):
        return key
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key.decode("utf-8", "backslashreplace")
