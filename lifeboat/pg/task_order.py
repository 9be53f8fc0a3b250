"""The order a restore's scheduler considers its post-data statements in: longest chain first.

The scheduler (:func:`lifeboat.pg.parallel.run_on_connections`) gives a free connection the
first task in its list that is ready (everything in its ``after`` done, no conflicting task
running). With the statements listed by kind (every index build, then every key attach, then
every foreign key), a free connection built the small tables' secondary indexes while the chain
that ends a restore waited: the biggest table's keys attached, then its foreign keys validated
one at a time (each locks the table). Listed by the estimated seconds of the chain of work
each statement starts (its own plus its longest chain of dependents: critical-path list
scheduling), what gates that chain comes first — the biggest table's builds, the keys its
foreign keys reference, its attaches — and the work nothing waits for fills the gaps. Loads
keep their biggest-first place ahead of every statement.

Seconds are estimated per byte of the captured sizes, from the 5,000-agent benchmark
(BENCHMARKS.md, session 7): only their proportions matter.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from lifeboat.pg.models import TableDef

# Estimated seconds per byte of each kind of task (load: of the table's total size; the others:
# of its heap, which they scan).
LOAD_PER_BYTE = 4.4e-9
INDEX_PER_HEAP_BYTE = 1.5e-9
FOREIGN_KEY_PER_HEAP_BYTE = 0.3e-9
ANALYZE_PER_HEAP_BYTE = 0.65e-9


class Schedulable(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def after(self) -> frozenset[str]: ...
    @property
    def shared_locks(self) -> frozenset[str]: ...
    @property
    def exclusive_locks(self) -> frozenset[str]: ...


T = TypeVar("T", bound=Schedulable)


def longest_chain_first(tasks: Sequence[T], seconds: Callable[[T], float]) -> list[T]:
    """``tasks`` ordered by the estimated seconds of the longest chain each one starts (its own
    plus its dependents', through ``after``), longest first; ties keep their order."""
    dependents: dict[str, list[T]] = defaultdict(list)
    for task in tasks:
        for key in task.after:
            dependents[key].append(task)
    chains: dict[int, float] = {}

    def chain(task: T) -> float:
        known = chains.get(id(task))
        if known is None:
            known = chains[id(task)] = seconds(task) + max(
                (chain(d) for d in dependents.get(task.key, ()) if d is not task), default=0.0
            )
        return known

    return sorted(tasks, key=lambda task: -chain(task))


def estimated_seconds(
    tables: Mapping[str, TableDef], tasks: Sequence[Schedulable]
) -> Callable[[Schedulable], float]:
    """A task's estimated seconds from its key (``load:``, ``index:``, ``analyze:``,
    ``constraint:`` — a foreign key when it locks two tables) and its table's captured size.

    A foreign key counts as all the foreign keys of its table together: they lock that table
    one at a time, so they run as one chain, after the table's keys are attached."""

    def heap(name: str) -> int:
        table = tables.get(name)
        return table.pages * 8192 if table is not None else 0

    def foreign_key_table(task: Schedulable) -> str | None:
        """The referencing table: of the two it locks, the one its key (``constraint:<table>.<name>``)
        names (a constraint name may hold dots)."""
        kind, _, name = task.key.partition(":")
        if kind != "constraint" or len(task.exclusive_locks) < 2:
            return None
        return max((t for t in task.exclusive_locks if name.startswith(t + ".")), key=len, default=None)

    foreign_keys = Counter(name for name in map(foreign_key_table, tasks) if name is not None)

    def seconds(task: Schedulable) -> float:
        kind, _, name = task.key.partition(":")
        table = foreign_key_table(task)
        if table is not None:
            return heap(table) * FOREIGN_KEY_PER_HEAP_BYTE * foreign_keys[table]
        if kind == "load":
            found = tables.get(name)
            return found.total_bytes * LOAD_PER_BYTE if found is not None else 0.0
        if kind == "analyze":
            return heap(name) * ANALYZE_PER_HEAP_BYTE
        if kind == "index":
            return sum(heap(locked) for locked in task.shared_locks) * INDEX_PER_HEAP_BYTE
        return 0.0

    return seconds
