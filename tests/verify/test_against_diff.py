"""The row-diff engine of verify --against, without a database: chunking, order, instants."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from lifeboat.ops.verify_against_diff import RowLayout, diff_lines, diff_streams

LAYOUT = RowLayout(("id", "value", "created_at"), (0,), frozenset({2}), (2,))


def lines(count: int) -> list[bytes]:
    return [f"row-{i:05d}\tvalue {i}\t2026-01-01 00:00:{i % 60:02d}+00".encode() for i in range(count)]


def chunked(rows: list[bytes], rng: random.Random) -> Iterator[bytes]:
    """Whole lines cut into random chunks at line boundaries (as blobs and COPY batches are)."""
    position = 0
    while position < len(rows):
        take = rng.randint(1, 40)
        yield b"".join(row + b"\n" for row in rows[position : position + take])
        position += take


def summary(diff) -> tuple:  # type: ignore[no-untyped-def]
    return (
        diff.rows_snapshot,
        diff.rows_database,
        sorted(diff.missing),
        sorted(diff.extra),
        sorted((line, tuple(columns)) for line, _, columns in diff.changed),
    )


@pytest.mark.parametrize("seed", range(25))
def test_streams_and_lines_agree_on_random_damage(seed: int) -> None:
    rng = random.Random(seed)
    snapshot = lines(rng.randint(0, 400))
    database = list(snapshot)
    for _ in range(rng.randint(0, 6)):
        if not database:
            break
        at = rng.randrange(len(database))
        kind = rng.choice(["drop", "change", "add", "shift"])
        if kind == "drop":
            del database[at]
        elif kind == "change":
            database[at] = database[at].replace(b"value", b"VALUE")
        elif kind == "add":
            database.insert(at, f"row-x{rng.randint(0, 9999):05d}\tnew\t\\N".encode())
        else:
            database[at] = database[at][:-3] + b"+01"  # another instant
    expected = diff_lines(LAYOUT, snapshot, database)
    found = diff_streams(LAYOUT, chunked(snapshot, rng), chunked(database, rng))
    assert summary(found) == summary(expected)


def test_the_same_instant_in_another_zone_is_equal() -> None:
    snapshot = [b"row-1\tv\t2026-01-01 10:00:00+00"]
    database = [b"row-1\tv\t2026-01-01 11:00:00+01"]
    assert diff_streams(LAYOUT, [snapshot[0] + b"\n"], [database[0] + b"\n"]).equal


def test_rows_in_another_order_are_equal_and_changes_name_their_columns() -> None:
    snapshot = lines(50)
    database = list(reversed(snapshot))
    database[3] = database[3].replace(b"value", b"other")
    diff = diff_lines(LAYOUT, snapshot, database)
    assert (diff.missing_count, diff.extra_count, diff.changed_count) == (0, 0, 1)
    assert diff.changed_columns == {"value": 1}
