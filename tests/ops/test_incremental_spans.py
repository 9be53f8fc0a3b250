"""Where each key's records are in a blob (``key_spans``): the same answer as walking the records
one by one, and a refusal (UnreadableBlob) for anything the plan must not trust."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.ops.incremental_blobs import key_spans
from lifeboat.ops.incremental_plan import UnreadableBlob

FIELD = st.text(st.characters(blacklist_characters="\t\n", blacklist_categories=("Cs",)), max_size=6)


def _walked(data: bytes, key_index: int) -> dict[str, tuple[int, int, int]]:
    """The obvious version: one record at a time."""
    spans: dict[str, tuple[int, int, int]] = {}
    offset = 0
    for record in data.split(b"\n")[:-1]:
        key = record.split(b"\t")[key_index].decode()
        start, _, rows = spans.get(key, (offset, offset, 0))
        offset += len(record) + 1
        spans[key] = (start, offset, rows + 1)
    return spans


@given(
    groups=st.lists(st.tuples(FIELD, st.lists(st.lists(FIELD, min_size=2, max_size=2), min_size=1, max_size=4)),
                    max_size=8, unique_by=lambda group: group[0]),
    key_index=st.integers(0, 2),
)  # fmt: skip
def test_spans_match_a_record_by_record_walk(
    groups: list[tuple[str, list[list[str]]]], key_index: int
) -> None:
    lines = []
    for key, rows in sorted(groups):
        for others in rows:
            fields = [*others]
            fields.insert(key_index, key)
            lines.append("\t".join(fields) + "\n")
    data = "".join(lines).encode()
    assert key_spans(data, key_index) == _walked(data, key_index)
    assert key_spans(data, key_index, runs=True) == _walked(data, key_index)
    for key, (start, end, rows) in key_spans(data, key_index).items():
        chunk = data[start:end]
        assert chunk.count(b"\n") == rows
        assert all(line.split(b"\t")[key_index].decode() == key for line in chunk.split(b"\n")[:-1])


@pytest.mark.parametrize(
    "data",
    [
        b"a\t1\nb\t2\na\t3\n",  # a key again after another: not sorted by key
        b"a\t1\nb\t2",  # not whole lines
        b"a\t1\nb\n",  # a record without the key's field (key index 1)
    ],
)
@pytest.mark.parametrize("runs", [False, True])
def test_untrustworthy_blobs_are_refused(data: bytes, runs: bool) -> None:
    with pytest.raises(UnreadableBlob):
        key_spans(data, 1 if data.endswith(b"b\n") else 0, runs=runs)


def test_an_empty_blob_has_no_keys() -> None:
    assert key_spans(b"", 0) == {}


def test_one_key_per_record() -> None:
    data = b"".join(f"k{number:03}\tv\n".encode() for number in range(50))
    spans = key_spans(data, 0)
    assert list(spans) == [f"k{number:03}" for number in range(50)]
    assert [rows for _, _, rows in spans.values()] == [1] * 50
    assert list(itertools.chain.from_iterable((s, e) for s, e, _ in spans.values()))[-1] == len(data)


class _Blob:
    def __init__(self, blob_id: str) -> None:
        self.id = blob_id


class _Repo:
    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs, self.reads = blobs, 0

    def read_blob(self, blob_id: str, *, trust_aead: bool = False) -> bytes:
        self.reads += 1
        return self.blobs[blob_id]


def test_the_write_reuses_what_the_plan_decoded_within_a_budget() -> None:
    from lifeboat.ops.incremental_blobs import BlobReader, DecodedBudget

    blobs = {f"b{n}": b"".join(b"%d\tk%d-%d\n" % (row, n, row // 2) for row in range(4)) for n in range(4)}
    budget = DecodedBudget(3 * len(blobs["b0"]))
    assert budget.take(len(blobs["b0"]))  # another table's reader holds one blob's worth
    repo = _Repo(blobs)
    reader = BlobReader(repo, 1, budget=budget)  # type: ignore[arg-type]
    for n, blob_id in enumerate(blobs):  # the plan decodes every blob once
        assert reader.counts(_Blob(blob_id)) == {f"k{n}-0": 2, f"k{n}-1": 2}
    assert repo.reads == 4
    reader.start_writing()
    for n, (blob_id, data) in enumerate(blobs.items()):  # the write slices each key's records
        first, second = reader.span(_Blob(blob_id), f"k{n}-0"), reader.span(_Blob(blob_id), f"k{n}-1")
        assert (first[0] + second[0], first[1] + second[1]) == (data, 4)
    # the plan kept two blobs (what the budget had left), the others are read again
    assert repo.reads == 4 + 2
    reader.close()
    budget.give_back(len(blobs["b0"]))
    assert budget.take(budget.limit)  # every byte was given back


def test_a_failed_table_gives_back_what_its_plan_kept() -> None:
    from lifeboat.ops.incremental_blobs import BlobReader, DecodedBudget

    blobs = {"b0": b"0\tk\n1\tk\n"}
    budget = DecodedBudget(len(blobs["b0"]))
    reader = BlobReader(_Repo(blobs), 1, budget=budget)  # type: ignore[arg-type]
    reader.counts(_Blob("b0"))
    assert not budget.take(1)
    reader.close()  # as copy_table does when the write fails
    assert budget.take(budget.limit)


@given(
    records=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b" ")), min_size=1, max_size=12),
    cut=st.integers(min_value=0, max_value=12),
)
def test_a_batch_is_cut_alike_with_or_without_its_lines(records: list[bytes], cut: int) -> None:
    """Cutting a COPY batch where a range ends gives the same two batches whether it holds its
    lines (then handed on, not split again) or not."""
    from lifeboat.ops.incremental import _split
    from lifeboat.pg.copystream import CopyBatch

    cut = min(cut, len(records))
    data = b"".join(record + b"\n" for record in records)
    keys = [bytes([index]) for index in range(len(records))]
    with_lines = _split(CopyBatch(data, len(records), keys, lines=list(records)), cut)
    without = _split(CopyBatch(data, len(records), keys), cut)
    for got, expected, lines in zip(with_lines, without, (records[:cut], records[cut:]), strict=True):
        assert (got.data, got.rows, got.keys) == (expected.data, expected.rows, expected.keys)
        assert got.lines == lines and got.data == b"".join(line + b"\n" for line in lines)
