"""The scheduler behind parallel snapshot copies and post-data: order, conflicts, failures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from lifeboat.errors import DatabaseError
from lifeboat.pg.parallel import run_on_connections


class _FakeConnection:
    def close(self) -> None:
        pass


def _open() -> Any:
    return _FakeConnection()


def test_after_and_conflicts_are_honoured() -> None:
    lock = threading.Lock()
    events: list[tuple[str, str]] = []
    running: set[str] = set()
    overlapped: list[tuple[str, str]] = []
    items = [("load:a", set(), "a"), ("load:b", set(), "b"), ("index:a1", {"load:a"}, "a"), ("index:a2", {"load:a"}, "a"),
             ("fk:b->a", {"index:a1", "index:a2", "load:b"}, "ab")]  # fmt: skip

    def work(conn: Any, item: tuple[str, set[str], str]) -> str:
        with lock:
            events.append(("start", item[0]))
            overlapped.extend((item[0], other) for other in running)
            running.add(item[0])
        time.sleep(0.02)
        with lock:
            running.discard(item[0])
            events.append(("end", item[0]))
        return item[0]

    def conflicts(x: tuple[str, set[str], str], y: tuple[str, set[str], str]) -> bool:
        return x[0].startswith("fk") or y[0].startswith("fk")  # the FK runs alone

    results = run_on_connections(
        _open, items, work, 3, conflicts=conflicts, key=lambda item: item[0], after=lambda item: item[1]
    )
    assert results == [item[0] for item in items]
    position = {event: index for index, event in enumerate(events)}
    for name, after, _ in items:
        for dependency in after:
            assert position[("end", dependency)] < position[("start", name)]
    assert ("index:a2", "index:a1") in overlapped or ("index:a1", "index:a2") in overlapped  # parallel
    assert not any("fk:b->a" in pair for pair in overlapped)


def test_first_failure_stops_new_work_and_is_raised() -> None:
    started: list[int] = []

    def work(conn: Any, item: int) -> None:
        started.append(item)
        if item == 0:
            raise DatabaseError("boom")

    with pytest.raises(DatabaseError, match="boom"):
        run_on_connections(_open, list(range(10)), work, 1)
    assert started == [0]


def test_unknown_keys_are_ignored_and_cycles_reported() -> None:
    assert run_on_connections(
        _open, [1], lambda conn, item: item, 2, key=str, after=lambda item: {"nothing"}
    ) == [1]
    with pytest.raises(DatabaseError, match="circular"):
        run_on_connections(
            _open, [1, 2], lambda conn, item: item, 2, key=str, after=lambda item: {str(3 - item)}
        )


def test_table_parts_cover_every_item_once() -> None:
    from lifeboat.pg import TablePart, parts_per_table
    from lifeboat.pg.models import ColumnDef, TableDef

    def table(name: str, size: int) -> TableDef:
        return TableDef(
            schema="s", name=name, owner="o", columns=[ColumnDef(name="c", type="int")], total_bytes=size
        )

    big, small = table("big", 900), table("small", 100)
    items = list(range(10))
    for count in (1, 3, 4, 11):
        parts = [TablePart(big, index, count).slice(items) for index in range(count)]
        assert [item for part in parts for item in part] == items
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert TablePart(big).whole and not TablePart(big, 0, 2).whole
    assert parts_per_table([big, small], 2) == {"s.big": 2, "s.small": 1}
    assert parts_per_table([big, small], 1) == {"s.big": 1, "s.small": 1}
