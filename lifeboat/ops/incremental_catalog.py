"""An incremental backup's agent catalog: the parent snapshot's entries of the agents none of whose
rows changed, the server's for the others.

An agent's catalog entry is a function of its rows in the tables the catalog query reads
(:data:`~lifeboat.letta.catalog.CATALOG_AGENT_ROWS`, and the rows reached through them,
:data:`~lifeboat.letta.catalog.CATALOG_LINKED_ROWS`). Each table's incremental plan proves, per
value of the stream's key, that the rows now are exactly the rows the parent held
(:class:`KeyProof`): every key of a run of kept blobs, every key whose rows were copied from the
parent's blobs, every key of a table nothing of which changed. An agent whose rows in every such
table are proven the same gets the parent's entry, computed by the same query
(``catalog_query``) over the same rows; every other agent — changed, new, or merely not proven
(a key read again, a table read whole, a link to a row not proven) — is computed by the server.
It errs towards computing: nothing the plans did not prove is taken from the parent.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lifeboat.letta.catalog import (
    CATALOG_AGENT_ROWS,
    CATALOG_LINKED_ROWS,
    AgentEntry,
    catalog_from_rows,
    catalog_query_digest,
    catalog_sql_for_agents,
    entries_adapter,
)
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.incremental_plan import Emit, Keep, Segment
from lifeboat.repo.manifest import Snapshot

ParamQuery = Callable[[str, Sequence[Any] | None], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class KeyProof:
    """The values of a table's stream key whose rows provably are those of the parent snapshot."""

    key: str | None  # the stream's key column
    everything: bool = False  # the whole table is (every value of any column)
    lows: tuple[str, ...] = ()  # kept runs: every value from lows[i] to highs[i], present or not
    highs: tuple[str, ...] = ()
    keys: frozenset[str] = field(default_factory=frozenset)  # values whose rows were copied

    def identical(self, value: str) -> bool:
        if self.everything or value in self.keys:
            return True
        at = bisect_right(self.lows, value) - 1
        return at >= 0 and value <= self.highs[at]

    def unproven(self, column: str, values: Sequence[str]) -> list[str]:
        """The values (sorted) whose rows, by ``column``, are not proven the same: those between
        the kept runs and not copied, found by bisection (a few gaps among many values)."""
        if self.everything:
            return []
        if column != self.key:
            return list(values)
        gaps = zip((None, *self.highs), (*self.lows, None), strict=True)
        found = []
        for after, before in gaps:
            start = 0 if after is None else bisect_right(values, after)
            stop = len(values) if before is None else bisect_left(values, before)
            found += [value for value in values[start:stop] if value not in self.keys]
        return found

    def identical_by(self, column: str, value: str | None) -> bool:
        """Whether the rows whose ``column`` is ``value`` are proven the same."""
        if self.everything:
            return True
        return column == self.key and value is not None and self.identical(value)


NOTHING = KeyProof(None)


def proof_of(key: str | None, segments: Sequence[Segment], previous: Sequence[object]) -> KeyProof:
    """What a table's plan proves: ``segments`` rebuild the stream whose parent blobs are
    ``previous``. Kept runs prove every key from their first blob's zone minimum to their last
    blob's zone maximum (their keys were not changed and number the rows the stream held, so no
    key in between lost or gained a row); copied keys prove themselves; read keys prove nothing."""
    kept = [blob for segment in segments if isinstance(segment, Keep) for blob in segment.blobs]
    if all(isinstance(segment, Keep) for segment in segments) and _ids(kept) == _ids(previous):
        return KeyProof(key, everything=True)  # every row kept: no key changed, none lost a row
    if key is None:
        return NOTHING
    ranges = []
    for segment in segments:
        if isinstance(segment, Keep) and segment.blobs:
            low, high = segment.blobs[0].zone_min, segment.blobs[-1].zone_max
            if low is None or high is None:
                return NOTHING
            ranges.append((low, high))
    ranges.sort()
    emitted = frozenset(segment.key for segment in segments if isinstance(segment, Emit))
    return KeyProof(key, lows=tuple(r[0] for r in ranges), highs=tuple(r[1] for r in ranges), keys=emitted)


def _ids(blobs: Sequence[object]) -> list[str]:
    return [blob.id for blob in blobs]  # type: ignore[attr-defined]


# The tables whose proofs decide which catalog entries are reused (see ``_unproven``).
PROVING_TABLES = frozenset(CATALOG_AGENT_ROWS) | frozenset(CATALOG_LINKED_ROWS)


class KeyProofs:
    """The proofs of one backup's tables, recorded by the copies as their plans are made (a plan
    is final before its table is written), read by the catalog once the tables it asks for have
    one or every copy ended (:meth:`finish`; a table without a proof proves nothing)."""

    def __init__(self) -> None:
        self._proofs: dict[tuple[str, str], KeyProof] = {}
        self._changed = threading.Condition()
        self._finished = False

    def record(self, schema: str, table: str, proof: KeyProof) -> None:
        with self._changed:
            self._proofs[(schema, table)] = proof
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def __enter__(self) -> KeyProofs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def wait(self, schema: str, tables: Collection[str] = ()) -> dict[str, KeyProof]:
        """The proofs in ``schema`` by table name, once each of ``tables`` has one (then the
        others' may be missing) or the copies ended."""

        def ready() -> bool:
            return self._finished or (bool(tables) and all((schema, t) in self._proofs for t in tables))

        with self._changed:
            self._changed.wait_for(ready)
            return {table: proof for (owner, table), proof in self._proofs.items() if owner == schema}


@dataclass
class ParentCatalog:
    """The parent snapshot's agent catalog as stored (the JSON array set aside when the manifest
    was read, or its parsed entries) and how it was computed."""

    entries: bytes | list[Any]
    catalog_query: str | None

    @classmethod
    def of(cls, snapshot: Snapshot) -> ParentCatalog | None:
        letta = snapshot.documents.get(layout.LETTA)
        if not isinstance(letta, dict):
            return None
        held = layout.held_catalog(snapshot)
        entries = held.text if held is not None else letta.get("agents")
        query = letta.get("catalog_query")
        if not isinstance(entries, bytes | list) or not isinstance(query, str):
            return None
        return cls(entries, query)


def read_catalog(
    query: ParamQuery,
    statement: str,
    parent: ParentCatalog,
    proofs: Callable[[], Mapping[str, KeyProof]],
    *,
    on_kept: Callable[[int], None] = lambda count: None,
) -> list[AgentEntry]:
    """The catalog ``statement`` would compute, with the parent's entries of the agents proven
    unchanged (``proofs`` waits for the copies' proofs; ``on_kept`` hears how many entries). What
    does not depend on the proofs is read first, while the copies run."""
    restricted = catalog_sql_for_agents(statement)
    if restricted is None or parent.catalog_query != catalog_query_digest(statement):
        on_kept(0)
        return catalog_from_rows(query(statement, None))
    ids = [str(row[0]) for row in query("SELECT a.id::text FROM agents a ORDER BY a.id", None)]
    links = {
        table: query(f"SELECT {CATALOG_AGENT_ROWS[link]}::text, {link_column}::text FROM {link}", None)
        for table, (_column, link, link_column) in CATALOG_LINKED_ROWS.items()
    }
    reusable = _parent_entries(parent.entries)
    unproven = _unproven(proofs(), links, {agent for agent in ids if agent in reusable})
    compute = [agent for agent in ids if agent not in reusable or agent in unproven]
    computed = (
        {entry.id: entry for entry in catalog_from_rows(query(restricted, (compute,)))} if compute else {}
    )
    if set(computed) != set(compute):  # an agent gone between two queries of one snapshot: not expected
        on_kept(0)
        return catalog_from_rows(query(statement, None))
    on_kept(len(ids) - len(compute))
    return [computed[agent] if agent in computed else reusable[agent] for agent in ids]


def _parent_entries(entries: bytes | list[Any]) -> dict[str, AgentEntry]:
    """The parent's entries by agent id; when one does not validate, none is reused."""
    try:
        if isinstance(entries, bytes):
            parsed = entries_adapter().validate_json(entries)
        else:
            parsed = entries_adapter().validate_python(entries)
    except ValidationError:
        return {}
    return {entry.id: entry for entry in parsed}


def _unproven(
    proofs: Mapping[str, KeyProof], links: Mapping[str, Sequence[tuple[Any, ...]]], candidates: set[str]
) -> set[str]:
    """The agents (of ``candidates``, or linked to a row not proven) whose entry's rows are not
    all proven the same as the parent's; ``links`` holds each linked table's (agent, value) pairs
    now. By bisection over the gaps between kept runs: a few gaps among thousands of agents."""
    unproven: set[str] = set()
    ordered = sorted(candidates)
    for table, column in CATALOG_AGENT_ROWS.items():
        unproven.update(proofs.get(table, NOTHING).unproven(column, ordered))
    for table, (column, _link, _link_column) in CATALOG_LINKED_ROWS.items():
        proof = proofs.get(table, NOTHING)
        if proof.everything:
            continue
        values = sorted({value for _agent, value in links[table] if value is not None})
        lost = set(proof.unproven(column, values))
        unproven.update(agent for agent, value in links[table] if value is None or value in lost)
    return unproven
