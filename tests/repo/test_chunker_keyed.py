"""Property tests (hypothesis) for key-aligned chunking (docs/FORMAT.md §10): the batched chunker
cuts exactly where a record-by-record walk of the rule does, whatever the batching; blobs end
only where the key changes unless they reached ``max_size``; after a change, cuts fall back into
step, so the unchanged keys' blobs deduplicate."""

from __future__ import annotations

import zlib
from itertools import accumulate, pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.repo import ChunkerParams, RecordChunker
from lifeboat.repo.chunker import KEYED_MIN_DIVISOR, KEYS_PER_BLOB

PARAMS = ChunkerParams(min_size=400, avg_size=1600, max_size=3000)

line = st.binary(max_size=500).map(lambda data: data.replace(b"\n", b"\t") + b"\n")
framed = st.binary(min_size=1, max_size=500)


def keyed(record: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[list[bytes], list[bytes]]]:
    """Records with sorted keys: runs of 1 to 12 records per key (some keys with many bytes)."""
    runs = st.lists(st.lists(record, min_size=1, max_size=12), max_size=40)
    return runs.map(
        lambda groups: (
            [row for group in groups for row in group],
            [b"k%05d" % number for number, group in enumerate(groups) for _ in group],
        )
    )


def walk(rows: list[bytes], keys: list[bytes], params: ChunkerParams, seed: int, *, lines: bool) -> list[int]:
    """Records per blob, walking records one at a time exactly as FORMAT.md §10 says."""
    scale = 2**32 // (params.avg_size - params.min_size)
    minimum = params.min_size // KEYED_MIN_DIVISOR
    counts, size, run = [0], 0, 0
    for index, row in enumerate(rows):
        if size and size + len(row) > params.max_size:
            counts.append(0)
            size = run = 0
        counts[-1] += 1
        size += len(row)
        run += len(row)
        run_ends = index + 1 < len(rows) and keys[index + 1] != keys[index]
        hashed = row[:-1] if lines else row
        boundary = zlib.crc32(hashed, seed) < run * scale + 2**32 // KEYS_PER_BLOB
        if size >= params.max_size or (run_ends and size >= minimum and boundary):
            counts.append(0)
            size = run = 0
        elif run_ends:
            run = 0
    return [count for count in counts if count]


def chunk(
    rows: list[bytes],
    keys: list[bytes],
    cuts: list[int],
    seed: int,
    *,
    lines: bool,
    params: ChunkerParams = PARAMS,
) -> list[Any]:
    chunker = RecordChunker(params, seed, key_aligned=True)
    chunks: list[Any] = []
    for number, (start, stop) in enumerate(pairwise([0, *cuts, len(rows)])):
        batch, batch_keys = rows[start:stop], keys[start:stop]
        if not lines:
            chunks += chunker.feed_framed(b"".join(batch), list(accumulate(map(len, batch))), batch_keys)
        elif number % 2:
            chunks += chunker.feed_records(batch, batch_keys)
        else:  # already split into lines, as a COPY batch hands them on
            chunks += chunker.feed(b"".join(batch), batch_keys, [row[:-1] for row in batch])
    last = chunker.finish()
    return chunks + ([last] if last else [])


def split_points(keys: list[bytes]) -> st.SearchStrategy[list[int]]:
    """Anywhere, and where a key's run ends (so a batch may end just where a blob ends)."""
    run_ends = [index for index in range(1, len(keys)) if keys[index] != keys[index - 1]]
    anywhere = st.lists(st.integers(0, len(keys)), max_size=8)
    at_run_ends = st.lists(st.sampled_from(run_ends), max_size=8) if run_ends else st.just([])
    return st.tuples(anywhere, at_run_ends).map(lambda both: sorted(both[0] + both[1]))


@pytest.mark.parametrize("lines", [True, False], ids=["lines", "framed"])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_cuts_follow_the_rule_whatever_the_batching(lines: bool, data: st.DataObject, seed: int) -> None:
    rows, keys = data.draw(keyed(line if lines else framed))
    chunks = chunk(rows, keys, data.draw(split_points(keys)), seed, lines=lines)
    assert [c.records for c in chunks] == walk(rows, keys, PARAMS, seed, lines=lines)
    again = chunk(rows, keys, data.draw(split_points(keys)), seed, lines=lines)
    assert [c.data for c in again] == [c.data for c in chunks]  # deterministic
    position = 0
    for number, piece in enumerate(chunks):
        assert piece.data == b"".join(rows[position : position + piece.records])
        held = keys[position : position + piece.records]
        assert (piece.zone_min, piece.zone_max) == (min(held).decode(), max(held).decode())
        assert len(piece.data) <= PARAMS.max_size or piece.records == 1
        position += piece.records
        if position < len(rows) and keys[position] == keys[position - 1]:
            # a blob ends inside a key's run only when the run's next record would not fit
            assert (
                len(piece.data) + len(rows[position]) > PARAMS.max_size or len(piece.data) >= PARAMS.max_size
            )
        if number + 1 < len(chunks) and keys[position] != keys[position - 1]:
            assert piece.zone_max < chunks[number + 1].zone_min  # what the incremental plan relies on
    assert position == len(rows)


@given(before=keyed(line), changed=keyed(line), after=keyed(line), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_a_changed_key_only_changes_blobs_near_it(
    before: tuple[list[bytes], list[bytes]],
    changed: tuple[list[bytes], list[bytes]],
    after: tuple[list[bytes], list[bytes]],
    seed: int,
) -> None:
    """Insert, remove or rewrite records in the middle: the blobs before the change are the same,
    and those after it fall back into step within a few blobs."""
    head = [b"a" + key for key in before[1]]
    tail = [b"c" + key for key in after[1]]
    old = chunk(before[0] + after[0], head + tail, [], seed, lines=True)
    new = chunk(
        before[0] + changed[0] + after[0], head + [b"b" + k for k in changed[1]] + tail, [], seed, lines=True
    )
    common_tail = 0
    while common_tail < min(len(old), len(new)) and old[-1 - common_tail].data == new[-1 - common_tail].data:
        common_tail += 1
    assert (
        sum(len(c.data) for c in old[len(old) - common_tail :])
        >= sum(map(len, after[0])) - 4 * PARAMS.max_size
    )
    common_head = 0
    while common_head < min(len(old), len(new)) and old[common_head].data == new[common_head].data:
        common_head += 1
    assert sum(len(c.data) for c in old[:common_head]) >= sum(map(len, before[0])) - PARAMS.max_size


def test_a_key_larger_than_max_size_is_cut_inside_its_run() -> None:
    rows = [b"x" * 99 + b"\n"] * 100  # 10,000 bytes of one key
    keys = [b"one"] * 100
    chunks = chunk(rows, keys, [37], seed=3, lines=True)
    assert [c.records for c in chunks] == walk(rows, keys, PARAMS, 3, lines=True) == [30, 30, 30, 10]
    assert all(c.zone_min == c.zone_max == "one" for c in chunks)


def test_small_runs_give_blobs_of_few_keys() -> None:
    """A table with a few small rows per key gets blobs of about KEYS_PER_BLOB keys (above the
    smaller minimum), not about avg_size bytes."""
    params = ChunkerParams()  # the default: 1 MiB average
    rows = [b"%06d\t" % n + b"r" * 300 + b"\n" for n in range(60_000)]
    keys = [b"agent-%05d" % (n // 5) for n in range(60_000)]  # 5 rows, ~1.5 KB per key
    chunks = chunk(rows, keys, [10_000, 30_000], seed=11, lines=True, params=params)
    sizes = [len(c.data) for c in chunks[:-1]]
    assert min(sizes) >= params.min_size // KEYED_MIN_DIVISOR
    assert sum(sizes) / len(sizes) < params.min_size // KEYED_MIN_DIVISOR + 20 * 1600


def test_a_key_aligned_stream_needs_keys() -> None:
    with pytest.raises(ValueError, match="needs a key"):
        RecordChunker(PARAMS, key_aligned=True).feed(b"a\n")
