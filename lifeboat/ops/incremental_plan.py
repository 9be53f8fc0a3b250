"""Which blobs of a table's previous stream an incremental backup can keep, and which key ranges
it must read again. Pure: no database, no repository (tests drive it with made-up tables).

A table's stream is its rows sorted by key (then a tie-breaker), cut into blobs of whole rows;
each blob records its row count and zone map (smallest and largest key, compared as text). A
blob may end in the middle of one key's rows (an agent's messages span several blobs). The
database now reports every key with its row count and whether any of its rows changed
(:mod:`lifeboat.pg.changes`). A *run* of consecutive blobs is kept when:

* the keys, as the server sorts them now, are in text order, and the previous zone maps follow
  each other in text order, so zone maps mark where each key's rows are in the stream;
* both ends of each blob are keys that still exist, and no key from the run's first to its last
  has a changed row;
* each end key of the run has as many rows now as the previous stream held for it (counted in
  the blobs whose zone holds it, decoded where the zone alone does not tell), so none of its
  rows was deleted; and the keys strictly inside the run have as many rows now as the run holds
  besides its end keys' rows, so none of theirs was.

Between kept runs the stream is rebuilt key by key: the rows of the runs' end keys held past
them, and of every key whose rows did not change and number as many as the blobs between held,
are copied from those blobs (decoded); the other keys' rows — changed, new, or held by a blob
that cannot be read — are read from the database as ranges strictly between copied keys. The result holds exactly the rows a full read would, in
the same order (a property test checks it against made-up tables).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import attrgetter, le, lt
from typing import Protocol


class Blob(Protocol):
    """What the plan needs of a stored blob (``lifeboat.repo.manifest.BlobRef`` has it)."""

    @property
    def records(self) -> int: ...

    @property
    def zone_min(self) -> str | None: ...

    @property
    def zone_max(self) -> str | None: ...


class Key(Protocol):
    """One key value now (``lifeboat.pg.changes.KeyCount``)."""

    @property
    def key(self) -> str: ...

    @property
    def rows(self) -> int: ...

    @property
    def changed(self) -> bool: ...


# The key of each of a blob's records, in order, or the number of records of each key; raises
# UnreadableBlob when the blob cannot be read.
Decode = Callable[[Blob], Sequence[str] | Mapping[str, int]]


class UnreadableBlob(Exception):
    """A blob the plan needed to look into could not be read (then the table is read whole)."""


@dataclass(frozen=True)
class Keep:
    """Blobs of the previous stream to reference again, in order."""

    blobs: Sequence[Blob]


@dataclass(frozen=True)
class Read:
    """Rows whose key lies strictly between ``after`` and ``before`` (None: unbounded).

    ``keys``: the keys the database reported in that range, when the plan listed them (the same
    snapshot's keys, so reading exactly these keys reads the same rows; a database evaluates a
    short list of keys faster than a long OR of ranges, above all without an index on the key).
    """

    after: str | None
    before: str | None
    keys: tuple[str, ...] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Emit:
    """The records of unchanged ``key`` held by these blobs of the previous stream, in order:
    copied from the blobs (decoded when the stream is written), not read from the database."""

    blobs: Sequence[Blob]
    key: str


Segment = Keep | Read | Emit

_UNSAFE = ("\\", "\t", "\n", "\r")
_UNSAFE_CHARACTER = re.compile("[" + re.escape("".join(_UNSAFE)) + "]")


def _no_decode(blob: Blob) -> Sequence[str] | Mapping[str, int]:
    raise UnreadableBlob("no decoder")


def plan_table(
    blobs: Sequence[Blob],
    keys: Sequence[Key],
    usable: Callable[[Blob], bool] = lambda blob: True,
    decode: Decode = _no_decode,
) -> list[Segment]:
    """The segments that rebuild the table's stream (a single unbounded ``Read`` when nothing can
    be kept). ``usable`` says whether a blob is still stored and may be referenced; ``decode``
    reads a blob's record keys (only blobs at the ends of kept runs and between them are decoded)."""
    if not _orders_agree(blobs, keys):
        return [Read(None, None)]
    try:
        return _Planner(blobs, keys, usable, decode).plan()
    except UnreadableBlob:
        return [Read(None, None)]


class _Planner:
    def __init__(
        self, blobs: Sequence[Blob], keys: Sequence[Key], usable: Callable[[Blob], bool], decode: Decode
    ) -> None:
        self.blobs, self.keys, self.usable, self._decode = blobs, keys, usable, decode
        # C-level iterators: a table has thousands of keys
        self.position = dict(zip(map(attrgetter("key"), keys), range(len(keys)), strict=True))
        self.changed_before = [0, *accumulate(map(int, map(attrgetter("changed"), keys)))]
        self.rows_before = [0, *accumulate(map(attrgetter("rows"), keys))]
        self._counts: dict[int, Counter[str]] = {}  # rows per key of each blob decoded so far
        self._zone_mins = [blob.zone_min or "" for blob in blobs]
        self._zone_maxes = [blob.zone_max or "" for blob in blobs]
        self._unreadable: set[int] = set()

    def plan(self) -> list[Segment]:
        keep = [self._candidate(index) for index in range(len(self.blobs))]
        runs = [run for first, last in _runs(keep) if (run := self._settle(first, last)) is not None]
        return self._segments(runs)

    # -- which blobs may be kept ---------------------------------------------------------------
    def _span(self, first: int, last: int) -> tuple[int, int] | None:
        start = self.position.get(self.blobs[first].zone_min or "")
        end = self.position.get(self.blobs[last].zone_max or "")
        return None if start is None or end is None or start > end else (start, end)

    def _candidate(self, index: int) -> bool:
        blob = self.blobs[index]
        where = self._span(index, index)
        return blob.records > 0 and where is not None and self._clean(*where) and self.usable(blob)

    def _clean(self, start: int, end: int) -> bool:
        return self.changed_before[end + 1] == self.changed_before[start]

    def _settle(self, first: int, last: int) -> tuple[int, int] | None:
        """Shrink the run from an end whose key lost rows; None when nothing of it can be kept."""
        while first <= last:
            where = self._span(first, last)
            if where is None or not self._clean(*where):
                return None
            if self._nothing_deleted(first, last, where):
                return first, last
            head, tail = self.blobs[first].zone_min or "", self.blobs[last].zone_max or ""
            if not self._whole(head):
                first += 1
            elif not self._whole(tail):
                last -= 1
            else:
                return (first, last) if self._inside_counts_match(first, last, where) else None
        return None

    def _nothing_deleted(self, first: int, last: int, where: tuple[int, int]) -> bool:
        """Whether the run's keys, none of them changed, still have every row the stream held.

        A key without a changed row can only have lost rows since (a deletion leaves no newer row
        version), so the rows now of all the keys from the run's first to its last number what
        the stream held of them exactly when none was deleted. The keys strictly inside are held
        by the run's blobs alone (zone maps are in order); its end keys' rows outside it are
        counted in the blobs next to it (rebuilt anyway, so decoded anyway): the run's own blobs
        are not decoded. When this does not hold, :meth:`_settle` finds which end lost rows.
        """
        start, end = where
        now = self.rows_before[end + 1] - self.rows_before[start]
        held = sum(self.blobs[index].records for index in range(first, last + 1))
        ends = {self.keys[start].key, self.keys[end].key}
        outside = {index for key in ends for index in self._holding(key) if not first <= index <= last}
        held += sum(self._records_of(index, key) for index in outside for key in ends)
        return now == held

    def _whole(self, key: str) -> bool:
        """The key has as many rows now as the previous stream held (none deleted)."""
        return self.keys[self.position[key]].rows == sum(
            self._records_of(index, key) for index in self._holding(key)
        )

    def _inside_counts_match(self, first: int, last: int, where: tuple[int, int]) -> bool:
        start, end = where
        run = range(first, last + 1)
        ends = {self.keys[start].key, self.keys[end].key}
        held = sum(self.blobs[index].records for index in run)
        held -= sum(self._records_of(index, key) for key in ends for index in run)
        inside = self.rows_before[end] - self.rows_before[start + 1] if end > start else 0
        return inside == held

    # -- what blobs hold ------------------------------------------------------------------------
    def _holding(self, key: str) -> list[int]:
        """Indexes of the blobs whose zone holds ``key``: consecutive, found by bisection (zone
        maps are in order, so the lower and the upper bounds each are sorted)."""
        return list(range(bisect_left(self._zone_maxes, key), bisect_right(self._zone_mins, key)))

    def _records_of(self, index: int, key: str) -> int:
        if not self._may_hold(index, key):
            return 0
        if self.blobs[index].zone_min == self.blobs[index].zone_max:
            return self.blobs[index].records
        return self.counts(index)[key]

    def counts(self, index: int) -> Counter[str]:
        """Rows per key in a blob (decoding it once; raises UnreadableBlob)."""
        if index not in self._counts:
            self._counts[index] = Counter(self._decode(self.blobs[index]))
        return self._counts[index]

    def _readable_counts(self, index: int) -> Counter[str] | None:
        if index in self._unreadable:
            return None
        try:
            return self.counts(index)
        except UnreadableBlob:
            self._unreadable.add(index)
            return None

    # -- the rebuilt stream ---------------------------------------------------------------------
    def _segments(self, runs: Sequence[tuple[int, int]]) -> list[Segment]:
        segments: list[Segment] = []
        previous: tuple[int, int] | None = None
        for run in [*runs, None]:
            segments += self._gap(previous, run)
            if run is not None:
                segments.append(Keep(self.blobs[run[0] : run[1] + 1]))
            previous = run
        return [segment for segment in segments if not (isinstance(segment, Emit) and not segment.blobs)]

    def _gap(self, before: tuple[int, int] | None, after: tuple[int, int] | None) -> list[Segment]:
        """What lies between two kept runs (or a stream end): the end keys' rows and every
        unchanged key's rows copied from the blobs, the changed keys' rows read again."""
        low = self.blobs[before[1]].zone_max if before is not None else None
        high = self.blobs[after[0]].zone_min if after is not None else None
        first = before[1] + 1 if before is not None else 0
        gap = range(first, after[0] if after is not None else len(self.blobs))
        if low is not None and low == high:
            return [self._emit(gap, low)]
        segments: list[Segment] = [self._emit(gap, low)] if low is not None else []
        start = self.position[low] + 1 if low is not None else 0
        end = self.position[high] if high is not None else len(self.keys)
        held = self._held(gap)
        read_from: int | None = None  # first key of the current stretch to read
        for index in range(start, end):
            key = self.keys[index]
            if held is not None and not key.changed and held.get(key.key, 0) == key.rows:
                if read_from is not None:
                    segments.append(
                        self._read(read_from, index, self._before(read_from, start, low), key.key)
                    )
                    read_from = None
                segments.append(self._emit(gap, key.key))
            elif read_from is None:
                read_from = index
        if read_from is not None:
            segments.append(self._read(read_from, end, self._before(read_from, start, low), high))
        if high is not None:
            segments.append(self._emit(gap, high))
        return segments

    def _read(self, first: int, stop: int, after: str | None, before: str | None) -> Read:
        """The rows of the keys at positions ``first`` to ``stop - 1``: those strictly between
        ``after`` and ``before`` (the keys next to them are copied, or the stream's ends)."""
        return Read(after, before, tuple(key.key for key in self.keys[first:stop]))

    def _before(self, index: int, start: int, low: str | None) -> str | None:
        """The key just before position ``index`` within a gap starting at ``start``."""
        return self.keys[index - 1].key if index > start else low

    def _held(self, gap: range) -> Counter[str] | None:
        """Rows per key in the gap's blobs; None when one cannot be read (then all is read)."""
        total: Counter[str] = Counter()
        for index in gap:
            counts = self._readable_counts(index)
            if counts is None:
                return None
            total.update(counts)
        return total

    def _emit(self, gap: range, key: str) -> Emit:
        """The rows of unchanged ``key`` in the gap's blobs (their zone maps say which may hold it)."""
        holding = [index for index in gap if self._may_hold(index, key)]
        for index in holding:
            self.counts(index)  # each must be readable now: raises UnreadableBlob otherwise
        return Emit([self.blobs[index] for index in holding], key)

    def _may_hold(self, index: int, key: str) -> bool:
        return (self.blobs[index].zone_min or "") <= key <= (self.blobs[index].zone_max or "")


def _orders_agree(blobs: Sequence[Blob], keys: Sequence[Key]) -> bool:
    """The server's key order is text order, and zone maps are present, safe and in order.
    (Compared and searched with C-level iterators: tables have thousands of keys.)"""
    texts = [key.key for key in keys]
    if not all(map(lt, texts, texts[1:])) or _UNSAFE_CHARACTER.search("".join(texts)):
        return False
    bounds = [bound for blob in blobs for bound in (blob.zone_min, blob.zone_max) if bound is not None]
    if len(bounds) != 2 * len(blobs):  # a zone map is missing
        return False
    return not _UNSAFE_CHARACTER.search("".join(bounds)) and all(map(le, bounds, bounds[1:]))


def _runs(keep: Sequence[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for index, kept in enumerate([*keep, False]):
        if kept and start is None:
            start = index
        elif not kept and start is not None:
            runs.append((start, index - 1))
            start = None
    return runs
