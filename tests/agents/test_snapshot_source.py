"""Reading an agent's rows from a snapshot (no database): ``records_holding`` narrows a blob to the
records that may hold the keys without changing what the key filter keeps, and ``SnapshotSource``
keeps no blob of a read by key once its records are taken."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.letta.subgraph import TableRows
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.source import SnapshotSource
from lifeboat.pg import copybinary
from lifeboat.pg.copybinary import _escape_text
from lifeboat.repo.manifest import Snapshot, Stream
from lifeboat.repo.repository import Repository

# Values as the server prints them: ids that are keys, other text (escapes, tabs, the key's bytes
# inside a longer value), NULL.
KEYS = st.sampled_from(["agent-1", "agent-2", "agent-12", "a", "é-1", "agent-1\\", "", "x\ty"])
VALUES = st.one_of(KEYS, st.text(alphabet='agent-12\\\t\n"é', max_size=12), st.none())
ROWS = st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=12)  # a blob is never empty


def _text_blob(rows: list[tuple[str | None, ...]]) -> bytes:
    fields = [[b"\\N" if v is None else _escape_text(v.encode()) for v in row] for row in rows]
    return b"".join(b"\t".join(row) + b"\n" for row in fields)


def _binary_blob(rows: list[tuple[str | None, ...]], texty: bool) -> bytes:
    """Binary tuples; the key column is ``jsonb`` unless ``texty`` (its binary form: a version byte, then the text)."""
    prefix = [b"", b"" if texty else b"\x01", b""]
    return b"".join(
        copybinary.tuple_of([None if v is None else p + v.encode() for p, v in zip(prefix, row, strict=True)])
        for row in rows
    )


def _attributes(binary: bool, key_type: str = "character varying") -> layout.TableStream:
    encoding = {"encoding": layout.COPY_BINARY, "types": ["text", key_type, "text"]} if binary else {}
    return layout.TableStream.model_validate(
        {"schema": "s", "table": "t", "columns": ["a", "key", "b"], "key": "key", **encoding}
    )


def _kept(attributes: layout.TableStream, records: list[bytes], keys: set[str]) -> list[bytes]:
    return (
        TableRows("t", attributes.columns, records, layout.text_view(attributes)).where_in("key", keys).lines
    )


@settings(max_examples=400, deadline=None)
@given(rows=ROWS, keys=st.sets(KEYS, max_size=3), binary=st.booleans(), texty=st.booleans())
def test_records_holding_keeps_what_the_key_filter_keeps(
    rows: list[tuple[str | None, ...]], keys: set[str], binary: bool, texty: bool
) -> None:
    attributes = _attributes(binary, "character varying" if texty else "jsonb")
    data = _binary_blob(rows, texty) if binary else _text_blob(rows)
    every = layout.split_records(attributes, data)
    narrowed = layout.records_holding(attributes, data, "key", keys)
    assert set(narrowed) <= set(every)
    assert _kept(attributes, narrowed, keys) == _kept(attributes, every, keys)


def test_records_holding_finds_lines_without_splitting_the_blob() -> None:
    attributes = _attributes(binary=False)
    data = _text_blob([("1", "agent-1", "x"), ("2", "agent-12", "agent-1"), ("3", "agent-2", "y")])
    assert layout.records_holding(attributes, data, "key", {"agent-1"}) == [
        b"1\tagent-1\tx\n",
        b"2\tagent-12\tagent-1\n",
    ]
    assert layout.records_holding(attributes, data + b"4\tagent-1", "key", {"agent-1"})[-1].startswith(b"2")
    many = {f"agent-{n}" for n in range(layout.MAX_NEEDLES + 1)}
    assert len(layout.records_holding(attributes, data, "key", many)) == 3  # every record


def _stream_of(repo: Repository, blobs: list[bytes], zones: list[tuple[str, str]]) -> Stream:
    attributes = _attributes(binary=False).model_dump(by_alias=True, exclude_none=True)
    with repo.lock(), repo.writer() as writer:
        refs = [
            writer.add_blob(blob, records=blob.count(b"\n"), zone_min=lo, zone_max=hi)
            for blob, (lo, hi) in zip(blobs, zones, strict=True)
        ]
    return Stream(name="table:s.t", attributes=attributes, blobs=refs)


def test_a_read_by_key_keeps_no_blob_and_a_whole_table_read_keeps_its_blobs(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", None, encrypt=False)
    blobs = [_text_blob([("1", "agent-1", "x")]), _text_blob([("2", "agent-2", "y"), ("3", "agent-3", "z")])]
    snapshot = Snapshot(streams=[_stream_of(repo, blobs, [("agent-1", "agent-1"), ("agent-2", "agent-3")])])
    source = SnapshotSource(repo, snapshot)
    rows = source("t", "key", {"agent-2"})
    assert rows is not None and rows.lines == [b"2\tagent-2\ty\n"]
    assert source.stats.blobs == 1 and not source._blobs
    whole = source("t", "key", None)
    assert whole is not None and len(whole) == 3 and source.stats.blobs == 3 and len(source._blobs) == 2
    again = source("t", "key", {"agent-1", "agent-3"})
    assert again is not None and [line[:1] for line in again.lines] == [b"1", b"3"]
    assert source.stats.blobs == 3  # from the kept blobs
