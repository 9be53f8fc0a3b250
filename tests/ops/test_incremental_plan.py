"""The incremental plan rebuilds exactly the rows a full read gives, whatever changed (property
test on made-up tables: no database needed)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.ops.incremental_plan import Emit, Keep, Read, UnreadableBlob, plan_table

Row = tuple[str, int, int]  # (key, row id, version)


@dataclass(frozen=True)
class FakeBlob:
    rows: tuple[Row, ...]

    @property
    def records(self) -> int:
        return len(self.rows)

    @property
    def zone_min(self) -> str:
        return min(row[0] for row in self.rows)

    @property
    def zone_max(self) -> str:
        return max(row[0] for row in self.rows)


@dataclass(frozen=True)
class FakeKey:
    key: str
    rows: int
    changed: bool


def _cut(rows: list[Row], cuts: set[int]) -> list[FakeBlob]:
    edges = [0, *sorted(cut for cut in cuts if 0 < cut < len(rows)), len(rows)]
    return [FakeBlob(tuple(rows[a:b])) for a, b in itertools.pairwise(edges) if b > a]


def _summary(rows: list[Row], new: set[tuple[str, int, int]]) -> list[FakeKey]:
    keys: dict[str, FakeKey] = {}
    for row in rows:
        old = keys.get(row[0], FakeKey(row[0], 0, False))
        keys[row[0]] = FakeKey(row[0], old.rows + 1, old.changed or row in new)
    return [keys[key] for key in sorted(keys)]


def _record(row: Row) -> bytes:
    return f"{row[0]}\t{row[1]}\t{row[2]}\n".encode()


def _row(record: bytes) -> Row:
    key, number, version = record.decode().rstrip("\n").split("\t")
    return key, int(number), int(version)


def _decoder(unreadable: set[FakeBlob] = frozenset()):  # type: ignore[assignment,no-untyped-def]
    def decode(blob: FakeBlob) -> list[str]:
        if blob in unreadable:
            raise UnreadableBlob("gone")
        return [row[0] for row in blob.rows]

    return decode


def _rebuild(plan: list[Keep | Read | Emit], now: list[Row]) -> list[Row]:
    rows: list[Row] = []
    for segment in plan:
        if isinstance(segment, Keep):
            rows += [row for blob in segment.blobs for row in blob.rows]  # type: ignore[attr-defined]
        elif isinstance(segment, Emit):
            rows += [row for blob in segment.blobs for row in blob.rows if row[0] == segment.key]  # type: ignore[attr-defined]
        else:
            in_range = [
                row for row in now
                if (segment.after is None or row[0] > segment.after)
                and (segment.before is None or row[0] < segment.before)
            ]  # fmt: skip
            if segment.keys is not None:  # the keys listed are exactly those of the range now
                assert [row for row in now if row[0] in segment.keys] == in_range
                assert list(segment.keys) == sorted({row[0] for row in in_range})
            rows += in_range
    return rows


tables = st.lists(st.tuples(st.integers(0, 30), st.integers(1, 4)), max_size=25)
edits = st.lists(st.tuples(st.sampled_from(["delete", "update", "insert"]), st.integers(0, 200)), max_size=8)


@settings(max_examples=400, deadline=None)
@given(tables, st.sets(st.integers(0, 80)), edits, st.sets(st.integers(0, 40)))
def test_plan_rebuilds_exactly_the_rows_now(
    shape: list[tuple[int, int]], cuts: set[int], changes: list[tuple[str, int]], lost: set[int]
) -> None:
    before = sorted({(f"agent-{key:03d}", n, 0) for key, count in shape for n in range(count)})
    blobs = _cut(before, cuts)
    now, new = list(before), set()
    for kind, where in changes:
        if kind == "insert":
            row = (f"agent-{where % 35:03d}", 100 + where, 0)
            now.append(row)
            new.add(row)
        elif now:
            row = now[where % len(now)]
            now.remove(row)
            if kind == "update":
                updated = (row[0], row[1], row[2] + 1)
                now.append(updated)
                new.add(updated)
    now.sort()
    unusable = {index for index in lost if index < len(blobs)}
    plan = plan_table(
        blobs,  # type: ignore[arg-type]
        _summary(now, new),
        lambda blob: blobs.index(blob) not in unusable,  # type: ignore[arg-type]
        _decoder({blobs[index] for index in unusable}),
    )
    assert _rebuild(plan, now) == now  # type: ignore[arg-type]
    kept = [blob for segment in plan if isinstance(segment, Keep) for blob in segment.blobs]
    assert not any(blobs.index(blob) in unusable for blob in kept)  # type: ignore[arg-type]


def test_nothing_changed_keeps_every_blob_and_reads_nothing() -> None:
    rows = [(f"agent-{key:03d}", n, 0) for key in range(10) for n in range(3)]
    blobs = _cut(rows, {4, 9, 15, 21})
    plan = plan_table(blobs, _summary(rows, set()), decode=_decoder())  # type: ignore[arg-type]
    assert plan == [Keep(blobs)]


def test_one_changed_key_rereads_only_around_it() -> None:
    rows = [(f"agent-{key:03d}", n, 0) for key in range(10) for n in range(3)]
    blobs = _cut(rows, {6, 12, 18, 24})  # each blob holds two whole keys
    changed = {("agent-004", 0, 0)}
    plan = plan_table(blobs, _summary(rows, changed), decode=_decoder())  # type: ignore[arg-type]
    # the changed key's blob is rebuilt: its unchanged key copied, the changed one read again
    assert plan == [
        Keep(blobs[:2]),
        Read("agent-003", "agent-005"),
        Emit([blobs[2]], "agent-005"),
        Keep(blobs[3:]),
    ]


def test_blobs_cut_inside_keys_are_kept_around_a_changed_key() -> None:
    """Every blob ends in the middle of a key (an agent's messages span blobs): the unchanged
    neighbours are kept, their end keys' rows in the reread stretch are copied, not read."""
    rows = [(f"agent-{key:03d}", n, 0) for key in range(10) for n in range(4)]
    blobs = _cut(rows, {6, 14, 22, 30})  # 40 rows: cuts at 1.5, 3.5, 5.5 and 7.5 keys
    plan = plan_table(blobs, _summary(rows, {("agent-004", 1, 0)}), decode=_decoder())  # type: ignore[arg-type]
    assert plan == [
        Keep(blobs[:2]),
        Emit([blobs[2]], "agent-003"),
        Read("agent-003", "agent-005"),
        Emit([blobs[2]], "agent-005"),
        Keep(blobs[3:]),
    ]
    assert _rebuild(plan, rows) == rows  # type: ignore[arg-type]


def test_kept_runs_are_not_decoded_when_nothing_was_deleted() -> None:
    """Only the rebuilt blob next to the changed key is decoded: the kept runs' end keys are
    counted there, and their own blobs are taken on their row counts."""
    rows = [(f"agent-{key:03d}", n, 0) for key in range(10) for n in range(4)]
    blobs = _cut(rows, {6, 14, 22, 30})
    decoded: list[int] = []
    decode = _decoder()

    def counting(blob: FakeBlob) -> list[str]:
        decoded.append(blobs.index(blob))
        return decode(blob)  # type: ignore[no-any-return]

    plan = plan_table(blobs, _summary(rows, {("agent-004", 1, 0)}), decode=counting)  # type: ignore[arg-type]
    assert _rebuild(plan, rows) == rows  # type: ignore[arg-type]
    assert set(decoded) == {2}


def test_a_deleted_row_of_a_split_key_is_not_resurrected() -> None:
    rows = [(f"agent-{key:03d}", n, 0) for key in range(10) for n in range(4)]
    blobs = _cut(rows, {6, 14, 22, 30})
    now = [row for row in rows if row != ("agent-003", 1, 0)]  # inside a kept blob; its key is split
    plan = plan_table(blobs, _summary(now, {("agent-004", 1, 0)}), decode=_decoder())  # type: ignore[arg-type]
    assert _rebuild(plan, now) == now  # type: ignore[arg-type]


def test_server_order_unlike_text_order_reads_everything() -> None:
    rows = [("b", 0, 0), ("a", 1, 0)]  # as if a collation sorted "b" before "a"
    blobs = [FakeBlob((rows[0],)), FakeBlob((rows[1],))]
    keys = [FakeKey("b", 1, False), FakeKey("a", 1, False)]
    assert plan_table(blobs, keys) == [Read(None, None)]  # type: ignore[arg-type]


def test_empty_table_now_needs_no_read() -> None:
    blobs = _cut([("agent-001", 0, 0)], set())
    assert plan_table(blobs, []) == []  # type: ignore[arg-type]


def test_reads_list_their_keys_when_few() -> None:
    from lifeboat.ops.incremental import MAX_LISTED_KEYS, _key_ranges

    few = [Read(None, "b", ("a",)), Read("b", "d", ("c",)), Read("d", "f", ())]
    (listed,) = _key_ranges("agent_id", few)  # one list: one hash lookup per row
    assert listed.condition().as_string(None) == "\"agent_id\" IN ('a', 'c')"
    (nothing,) = _key_ranges("agent_id", [Read("d", "f", ())])
    assert nothing.condition().as_string(None) == "false"
    many = [Read(None, None, tuple(f"k{n:05d}" for n in range(MAX_LISTED_KEYS + 1)))]
    assert _key_ranges("agent_id", many)[0].condition().as_string(None) == "true"
    unlisted = [Read("a", "c"), Read("d", None, ("e",))]
    assert [r.values for r in _key_ranges("agent_id", unlisted)] == [None, None]


@settings(max_examples=200, deadline=None)
@given(tables, st.sets(st.integers(0, 80)), st.integers(0, 35))
def test_blobs_holding_a_key_are_found_by_bisection(
    shape: list[tuple[int, int]], cuts: set[int], probe: int
) -> None:
    from lifeboat.ops.incremental_plan import _Planner

    rows = sorted({(f"agent-{key:03d}", n, 0) for key, count in shape for n in range(count)})
    blobs = _cut(rows, cuts)
    planner = _Planner(blobs, _summary(rows, set()), lambda blob: True, _decoder())  # type: ignore[arg-type]
    key = f"agent-{probe:03d}"
    assert planner._holding(key) == [
        index for index, blob in enumerate(blobs) if blob.zone_min <= key <= blob.zone_max
    ]
