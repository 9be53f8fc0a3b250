"""Reading the snapshot side of an agent restore: its agent catalog, the agents asked for, the
rows of their subgraph (only the blobs whose zone maps may hold them), and the runs that were in
flight when it was taken."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import closing
from typing import Any, cast

from lifeboat.errors import UsageError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.letta.subgraph import Subgraph, TableRows
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.report import ReadStats
from lifeboat.ops.agents import filter_agents
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository


class SnapshotSource:
    """A :data:`~lifeboat.letta.subgraph.RowSource` over one snapshot: reads only the blobs whose
    zone maps may hold the keys (when the stream is keyed by the asked column) and counts what it
    reads.

    A read by key keeps only the records that may hold the keys (:func:`layout.records_holding`)
    and drops the blob: holding every blob read until the end made a one-agent restore's memory
    grow with the deployment (the per-agent tables' blobs grow until they reach the chunker's
    average size: ~15 MB of plaintext at 10,000 agents). A whole-table read (no keys) keeps its
    blobs, for the later read by key of the same table (a group's members); a blob is fetched
    again only when two reads by key need it (the same table asked for twice)."""

    def __init__(self, repo: Repository, snapshot: Snapshot) -> None:
        self.repo = repo
        self.snapshot = snapshot
        self.streams = {table: found for (_schema, table), found in layout.table_streams(snapshot).items()}
        self.stats = ReadStats(snapshot_bytes=_distinct_size(snapshot))
        self._blobs: dict[str, bytes] = {}

    def __call__(self, table: str, key: str, keys: set[str] | None) -> TableRows | None:
        found = self.streams.get(table)
        if found is None:
            return None
        stream, attributes = found
        columns = list(attributes.columns)
        view = layout.text_view(attributes)
        if keys is not None and not keys:
            return TableRows(table, columns, view=view)
        zoned = keys is not None and attributes.key == key
        refs = stream.blobs_covering(keys if zoned else None)
        by_key = keys is not None and key in columns
        lines: list[bytes] = []
        for data in self._read([ref.id for ref in refs], {ref.id: ref for ref in refs}, keep=not by_key):
            if by_key:
                assert keys is not None
                lines.extend(layout.records_holding(attributes, data, key, keys))
            else:
                lines.extend(layout.split_records(attributes, data))
        rows = TableRows(table, columns, lines, view)
        return rows.where_in(key, keys) if by_key and keys is not None else rows

    def _read(self, blob_ids: list[str], refs: dict[str, Any], *, keep: bool = True) -> Iterator[bytes]:
        """The blobs' plaintexts in order, from the kept ones or storage; ``keep``: keep those fetched
        (else each is dropped after its last use in ``blob_ids``)."""
        missing = [blob_id for blob_id in dict.fromkeys(blob_ids) if blob_id not in self._blobs]
        uses = Counter(blob_ids)
        here: dict[str, bytes] = {}  # fetched, not kept, used again later in blob_ids
        with closing(
            cast(Generator[tuple[str, bytes], None, None], self.repo.read_blobs(missing))
        ) as fetched:
            for blob_id in blob_ids:
                uses[blob_id] -= 1
                data = self._blobs[blob_id] if blob_id in self._blobs else here.get(blob_id)
                if data is None:
                    data = self._fetch(fetched, blob_id, refs)
                    if keep:
                        self._blobs[blob_id] = data
                    elif uses[blob_id]:
                        here[blob_id] = data
                if not uses[blob_id]:
                    here.pop(blob_id, None)
                yield data

    def _fetch(self, fetched: Iterator[tuple[str, bytes]], blob_id: str, refs: dict[str, Any]) -> bytes:
        started = time.monotonic()
        fetched_id, data = next(fetched)
        self.stats.seconds += time.monotonic() - started
        if fetched_id != blob_id:
            raise AssertionError(f"blob {fetched_id} read in place of {blob_id}")
        self.stats.blobs += 1
        self.stats.bytes += refs[blob_id].size
        self.stats.raw_bytes += len(data)
        return data


def _distinct_size(snapshot: Snapshot) -> int:
    sizes = {blob.id: blob.size for blob in snapshot.iter_blobs()}
    return sum(sizes.values())


def catalog(snapshot: Snapshot) -> list[AgentEntry]:
    """The snapshot's agent catalog (written by the backup)."""
    return layout.letta_document(snapshot).agents or []


def choose_agents(
    snapshot: Snapshot, ids: Iterable[str] = (), name: str | None = None, tag: str | None = None
) -> list[AgentEntry]:
    """:func:`select_agents` over the snapshot's catalog. Chosen by id (or id prefix) alone, only
    the chosen entries are turned into :class:`AgentEntry` (every entry must still be an object
    with a string id): validating a 20,000-agent catalog whole for one agent took ~0.6 s and tens
    of MB, the part of a one-agent restore that grew with the deployment."""
    if name is not None or tag is not None:
        return select_agents(catalog(snapshot), ids, name, tag)
    held = layout.held_catalog(snapshot)
    known: Mapping[str, object]
    stored: Callable[[str], dict[str, Any]]
    if held is not None:  # set aside as text: only the chosen entries are parsed
        known, stored = dict.fromkeys(held.ids), held.entry
    else:
        by_id = layout.catalog_by_id(snapshot)
        known, stored = by_id, by_id.__getitem__
    wanted = list(dict.fromkeys(_full_agent_id(agent_id, known, len(known)) for agent_id in ids))
    if not wanted:
        raise UsageError("no agent in the snapshot matches the selection")
    return [layout.agent_entry(stored(agent_id)) for agent_id in wanted]


def select_agents(
    entries: list[AgentEntry],
    ids: Iterable[str] = (),
    name: str | None = None,
    tag: str | None = None,
) -> list[AgentEntry]:
    """Agents by id or unique id prefix (each must exist), plus those matching the name glob and/or
    tag; never empty."""
    by_id = {entry.id: entry for entry in entries}
    wanted = list(dict.fromkeys(_full_agent_id(agent_id, by_id, len(entries)) for agent_id in ids))
    chosen = [by_id[agent_id] for agent_id in wanted]
    if name is not None or tag is not None:
        chosen += [entry for entry in filter_agents(entries, name, tag) if entry.id not in wanted]
    if not chosen:
        raise UsageError("no agent in the snapshot matches the selection")
    return chosen


def _full_agent_id(ref: str, by_id: Mapping[str, object], total: int) -> str:
    """The agent id ``ref`` names: itself, or the one id it is a unique prefix of (short ids as listed)."""
    if ref in by_id:
        return ref
    matches = [agent_id for agent_id in by_id if ref and agent_id.startswith(ref)]
    if len(matches) > 1:
        raise UsageError(f"agent id prefix {ref} is ambiguous: {', '.join(sorted(matches)[:3])}")
    if not matches:
        raise UsageError(f"agent {ref} is not in the snapshot ({total} agents there)")
    return matches[0]


def snapshot_revision(snapshot: Snapshot) -> str | None:
    """The Letta schema revision the snapshot was taken at, when the backup recorded it."""
    return layout.source_document(snapshot).letta_revision or None


def run_warnings(snapshot: Snapshot, graph: Subgraph) -> list[str]:
    """A warning when runs of the restored agents were in flight at the snapshot instant."""
    in_flight = layout.runs_in_flight(snapshot)
    mine = [run for run in in_flight if run.agent_id in graph.agent_ids]
    if not mine:
        return []
    return [
        f"{len(mine)} run(s) were in flight at the snapshot instant and are restored as they were "
        f"(e.g. {mine[0].run_id} {mine[0].status}); 'lifeboat reconcile' closes them"
    ]
