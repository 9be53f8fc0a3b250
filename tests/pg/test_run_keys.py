"""A batch's keys found at the edges of its runs (``run_keys``) are every line's key
(``text_keys``) whenever equal keys are contiguous, whatever the runs' lengths; and the backup
only assumes contiguous runs for text keys under a deterministic, byte-equal collation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lifeboat.pg.copystream import keys_come_in_runs, run_keys, text_keys
from lifeboat.pg.models import ColumnDef, TableDef

FIELD = st.binary(max_size=5).map(lambda b: b.replace(b"\t", b"").replace(b"\n", b""))


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """Lines of 1-4 fields whose key field (distinct keys, each a run of 1-300 lines) comes in runs."""
    key_index = draw(st.integers(0, 2))
    keys = draw(st.lists(FIELD, unique=True, max_size=12))
    lines = []
    for key in keys:
        for _ in range(draw(st.integers(1, 300))):
            fields = [draw(FIELD) for _ in range(3)]
            fields.insert(key_index, key)
            lines.append(b"\t".join(fields))
    return lines, key_index


@given(runs())
def test_run_keys_are_every_lines_key(case: tuple[list[bytes], int]) -> None:
    lines, key_index = case
    assert run_keys(lines, key_index) == text_keys(lines, key_index)


@given(st.integers(0, 400))
def test_unique_keys_fall_back_to_every_line(count: int) -> None:
    lines = [b"%d\tx" % n for n in range(count)]
    assert run_keys(lines, 0) == text_keys(lines, 0)


def table(column_type: str, collation: str | None = None) -> TableDef:
    columns = [ColumnDef(name="agent_id", type=column_type, collation=collation)]
    return TableDef(schema="s", name="t", owner="o", columns=columns)


def test_runs_are_assumed_only_for_byte_equal_text_keys() -> None:
    assert keys_come_in_runs(table("character varying"), "agent_id")
    assert keys_come_in_runs(table("character varying(64)"), "agent_id")
    assert keys_come_in_runs(table("text", 'pg_catalog."C"'), "agent_id")
    assert not keys_come_in_runs(table("text", '"und-x-icu"'), "agent_id")  # could be nondeterministic
    assert not keys_come_in_runs(table("numeric"), "agent_id")  # 1.0 = 1.00, printed differently
    assert not keys_come_in_runs(table("text"), "other")
    assert not keys_come_in_runs(table("text"), None)
