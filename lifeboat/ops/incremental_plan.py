"""Which blobs of a table's previous stream an incremental backup can keep, and which key ranges
it must read again. Pure: no database, no repository (tests drive it with made-up tables).

A table's stream is its rows sorted by key (then a tie-breaker), cut into blobs of whole rows;
each blob records its row count and zone map (smallest and largest key, compared as text). The
database now reports every key with its row count and whether any of its rows changed
(:mod:`lifeboat.pg.changes`). A *run* of consecutive blobs is kept when:

* the keys, as the server sorts them now, are in text order, and the previous zone maps follow
  each other in text order, so zone maps mark where a blob starts and ends in the stream;
* both ends of each blob are keys that still exist, and no key from the run's first to its last
  has a changed row;
* no blob just outside the run shares a key with the run's ends (that key's rows would be split
  between a kept blob and a reread range);
* the rows now under the run's keys number exactly the run's rows: unchanged rows were all in
  the previous backup, so an equal count means none was deleted.

Everything else is read again as ranges of keys strictly between kept runs. The kept blobs and
the reread ranges, in order, hold exactly the rows a full read would, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
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


@dataclass(frozen=True)
class Keep:
    """Blobs of the previous stream to reference again, in order."""

    blobs: Sequence[Blob]


@dataclass(frozen=True)
class Read:
    """Rows whose key lies strictly between ``after`` and ``before`` (None: unbounded)."""

    after: str | None
    before: str | None


Segment = Keep | Read

_UNSAFE = ("\\", "\t", "\n", "\r")


def plan_table(
    blobs: Sequence[Blob], keys: Sequence[Key], usable: Callable[[Blob], bool] = lambda blob: True
) -> list[Segment]:
    """The segments that rebuild the table's stream (a single unbounded ``Read`` when nothing can
    be kept). ``usable`` says whether a blob is still stored and may be referenced."""
    if not _orders_agree(blobs, keys):
        return [Read(None, None)]
    position = {key.key: index for index, key in enumerate(keys)}
    changed_before = [0, *accumulate(int(key.changed) for key in keys)]
    rows_before = [0, *accumulate(key.rows for key in keys)]

    def span(first: Blob, last: Blob) -> tuple[int, int] | None:
        start, end = position.get(first.zone_min or ""), position.get(last.zone_max or "")
        return None if start is None or end is None or start > end else (start, end)

    def clean(start: int, end: int) -> bool:
        return changed_before[end + 1] == changed_before[start]

    keep = []
    for blob in blobs:
        where = span(blob, blob)
        keep.append(blob.records > 0 and where is not None and clean(*where) and usable(blob))
    _drop_shared_edges(blobs, keep)
    runs = []
    for first, last in _runs(keep):
        where = span(blobs[first], blobs[last])
        if where is None or not clean(*where):
            continue
        expected = sum(blob.records for blob in blobs[first : last + 1])
        if rows_before[where[1] + 1] - rows_before[where[0]] == expected:
            runs.append((first, last, where))
    return _segments(blobs, keys, runs)


def _orders_agree(blobs: Sequence[Blob], keys: Sequence[Key]) -> bool:
    """The server's key order is text order, and zone maps are present, safe and in order."""
    texts = [key.key for key in keys]
    if any(a >= b for a, b in pairwise(texts)) or any(c in text for text in texts for c in _UNSAFE):
        return False
    bounds: list[str] = []
    for blob in blobs:
        if blob.zone_min is None or blob.zone_max is None:
            return False
        bounds += [blob.zone_min, blob.zone_max]
    if any(c in text for text in bounds for c in _UNSAFE):
        return False
    return all(a <= b for a, b in pairwise(bounds))


def _drop_shared_edges(blobs: Sequence[Blob], keep: list[bool]) -> None:
    """Unkeep a blob that shares its first or last key with an adjacent blob that is read again."""
    changed = True
    while changed:
        changed = False
        for index, kept in enumerate(keep):
            if not kept:
                continue
            before = index > 0 and not keep[index - 1] and blobs[index - 1].zone_max == blobs[index].zone_min
            after = (
                index + 1 < len(blobs)
                and not keep[index + 1]
                and blobs[index + 1].zone_min == blobs[index].zone_max
            )
            if before or after:
                keep[index] = False
                changed = True


def _runs(keep: Sequence[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for index, kept in enumerate([*keep, False]):
        if kept and start is None:
            start = index
        elif not kept and start is not None:
            runs.append((start, index - 1))
            start = None
    return runs


def _segments(
    blobs: Sequence[Blob], keys: Sequence[Key], runs: Sequence[tuple[int, int, tuple[int, int]]]
) -> list[Segment]:
    """Kept runs in order, with a ``Read`` for each gap that holds at least one key now."""
    segments: list[Segment] = []
    previous_end = -1  # position of the last key of the previous kept run
    previous_key: str | None = None
    for first, last, (start, end) in runs:
        if start > previous_end + 1:  # keys strictly between the two runs exist now
            segments.append(Read(previous_key, blobs[first].zone_min))
        segments.append(Keep(blobs[first : last + 1]))
        previous_end, previous_key = end, blobs[last].zone_max
    if previous_end + 1 < len(keys):
        segments.append(Read(previous_key, None))
    return segments
