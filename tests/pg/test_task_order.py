"""The post-data order of a restore: longest chain of work first (lifeboat.pg.task_order)."""

from __future__ import annotations

from dataclasses import dataclass

from lifeboat.pg.models import TableDef
from lifeboat.pg.task_order import estimated_seconds, longest_chain_first


@dataclass(frozen=True)
class Task:
    key: str
    after: frozenset[str] = frozenset()
    shared_locks: frozenset[str] = frozenset()
    exclusive_locks: frozenset[str] = frozenset()


def table(name: str, pages: int) -> TableDef:
    return TableDef(schema="s", name=name, owner="o", columns=[], pages=pages, total_bytes=pages * 8192 * 2)


def index(table_name: str, name: str) -> Task:
    return Task(
        f"index:s.{name}", frozenset({f"load:s.{table_name}"}), shared_locks=frozenset({f"s.{table_name}"})
    )


def attach(table_name: str, name: str) -> Task:
    return Task(
        f"constraint:s.{table_name}.{name}",
        frozenset({f"index:s.{name}"}),
        exclusive_locks=frozenset({f"s.{table_name}"}),
    )


def foreign_key(table_name: str, name: str, references: str, after: set[str]) -> Task:
    return Task(
        f"constraint:s.{table_name}.{name}",
        frozenset(after),
        exclusive_locks=frozenset({f"s.{table_name}", f"s.{references}"}),
    )


def test_the_keys_a_big_tables_foreign_keys_wait_for_come_before_unrelated_builds() -> None:
    tables = {"s.big": table("big", 10_000), "s.ref": table("ref", 100), "s.other": table("other", 1_000)}
    tasks = [
        index("big", "big_pkey"),
        index("other", "other_secondary"),  # nothing waits for it
        index("ref", "ref_pkey"),
        attach("big", "big_pkey"),
        attach("ref", "ref_pkey"),
        foreign_key("big", "big_ref_fkey", "ref", {"constraint:s.big.big_pkey", "constraint:s.ref.ref_pkey"}),
    ]
    ordered = [task.key for task in longest_chain_first(tasks, estimated_seconds(tables, tasks))]
    assert ordered.index("index:s.ref_pkey") < ordered.index("index:s.other_secondary")
    assert ordered.index("constraint:s.ref.ref_pkey") < ordered.index("index:s.other_secondary")
    assert ordered[0] == "index:s.big_pkey"


def test_a_tables_foreign_keys_count_as_one_chain() -> None:
    """They lock their table one at a time: each stands for all of them."""
    tables = {"s.big": table("big", 10_000), "s.ref": table("ref", 10)}
    fks = [foreign_key("big", f"fk{n}", "ref", set()) for n in range(3)]
    one = estimated_seconds(tables, fks[:1])(fks[0])
    assert one > 0
    assert estimated_seconds(tables, fks)(fks[2]) == 3 * one


def test_ties_keep_their_order_and_nothing_is_lost() -> None:
    tasks = [Task(f"other:{n}") for n in range(20)]
    assert longest_chain_first(tasks, lambda task: 0.0) == tasks
