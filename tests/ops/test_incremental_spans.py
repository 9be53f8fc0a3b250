"""Where each key's records are in a blob (``key_spans``): the same answer as walking the records
one by one, and a refusal (UnreadableBlob) for anything the plan must not trust."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.ops.incremental import key_spans
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
def test_untrustworthy_blobs_are_refused(data: bytes) -> None:
    with pytest.raises(UnreadableBlob):
        key_spans(data, 1 if data.endswith(b"b\n") else 0)


def test_an_empty_blob_has_no_keys() -> None:
    assert key_spans(b"", 0) == {}


def test_one_key_per_record() -> None:
    data = b"".join(f"k{number:03}\tv\n".encode() for number in range(50))
    spans = key_spans(data, 0)
    assert list(spans) == [f"k{number:03}" for number in range(50)]
    assert [rows for _, _, rows in spans.values()] == [1] * 50
    assert list(itertools.chain.from_iterable((s, e) for s, e, _ in spans.values()))[-1] == len(data)
