"""``ls SNAPSHOT`` and ``stats``: what a snapshot holds and what snapshots cost, from manifests only
(no blob is read; sizes come from the manifests' blob references and the pack listing).

Sizes (all bytes):

- ``raw``: the table data as COPY text, summed over the snapshots (what restoring them all writes);
- ``deduplicated``: the COPY text of the distinct blobs they use (what is kept once);
- ``stored``: the distinct blobs as stored (compressed, encrypted) — what the snapshots occupy;
- ``repository``: every pack file in storage (also blobs no snapshot needs until a prune).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from lifeboat.letta.catalog import AgentEntry
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.snapshot_filter import source_database
from lifeboat.repo.manifest import Snapshot, Stream
from lifeboat.repo.repository import Repository

LARGEST_AGENTS = 10


class TableContents(BaseModel):
    table: str
    rows: int
    raw_bytes: int
    stored_bytes: int
    blobs: int


class SnapshotListing(BaseModel):
    """What ``lifeboat ls --json`` prints (docs/JSON.md)."""

    id: str
    short_id: str
    time: str
    hostname: str
    tags: list[str]
    database: str | None
    tables: list[TableContents]
    agents: list[AgentEntry] | None  # None: the snapshot carries no agent catalog


class TableStats(BaseModel):
    table: str
    rows: int  # in the newest snapshot considered
    raw_bytes: int  # summed over the snapshots
    deduplicated_bytes: int
    stored_bytes: int


class AgentSize(BaseModel):
    id: str
    name: str
    rows: int  # messages + archival passages + blocks (the catalog's counts)
    messages: int
    passages: int
    blocks: int


class RepositoryStats(BaseModel):
    """What ``lifeboat stats --json`` prints (docs/JSON.md)."""

    snapshots: list[str]
    raw_bytes: int
    deduplicated_bytes: int
    stored_bytes: int
    blobs: int
    repository_bytes: int
    packs: int
    tables: list[TableStats]
    largest_agents: list[AgentSize]  # of the newest snapshot considered, by rows


def table_name(stream: Stream) -> str:
    return stream.name.removeprefix(layout.TABLE_STREAM_PREFIX)


def agent_catalog(snapshot: Snapshot) -> list[AgentEntry] | None:
    letta = layout.letta_document(snapshot)
    return letta.agents if letta.letta else None


def list_snapshot(snapshot: Snapshot) -> SnapshotListing:
    tables = [
        TableContents(
            table=table_name(stream),
            rows=stream.records,
            raw_bytes=stream.raw_size,
            stored_bytes=stream.size,
            blobs=len(stream.blobs),
        )
        for stream in sorted(snapshot.streams, key=lambda s: s.name)
    ]
    return SnapshotListing(
        id=snapshot.id,
        short_id=snapshot.short_id,
        time=snapshot.time.isoformat(),
        hostname=snapshot.hostname,
        tags=list(snapshot.tags),
        database=source_database(snapshot),
        tables=tables,
        agents=agent_catalog(snapshot),
    )


def repository_stats(repo: Repository, snapshots: Iterable[Snapshot]) -> RepositoryStats:
    """Sizes of ``snapshots`` (oldest first; read one at a time when given lazily: only the newest
    one's catalog is kept) and of the repository's packs."""
    seen: set[str] = set()
    per_table: dict[str, TableStats] = {}
    raw = deduplicated = stored = 0
    ids: list[str] = []
    newest: Snapshot | None = None
    for snapshot in snapshots:
        ids.append(snapshot.id)
        newest = snapshot
        for stream in snapshot.streams:
            name = table_name(stream)
            entry = per_table.setdefault(
                name, TableStats(table=name, rows=0, raw_bytes=0, deduplicated_bytes=0, stored_bytes=0)
            )
            entry.rows = stream.records  # the newest snapshot's count wins
            entry.raw_bytes += stream.raw_size
            raw += stream.raw_size
            for blob in stream.blobs:
                if blob.id in seen:
                    continue
                seen.add(blob.id)
                entry.deduplicated_bytes += blob.raw_size
                entry.stored_bytes += blob.size
                deduplicated += blob.raw_size
                stored += blob.size
    packs = repo.stored_packs()
    catalog = agent_catalog(newest) if newest is not None else None
    largest = sorted(
        (
            AgentSize(
                id=a.id,
                name=a.name,
                rows=a.messages + a.passages + a.blocks,
                messages=a.messages,
                passages=a.passages,
                blocks=a.blocks,
            )
            for a in catalog or []
        ),
        key=lambda a: (-a.rows, a.id),
    )[:LARGEST_AGENTS]
    return RepositoryStats(
        snapshots=ids,
        raw_bytes=raw,
        deduplicated_bytes=deduplicated,
        stored_bytes=stored,
        blobs=len(seen),
        repository_bytes=sum(packs.values()),
        packs=len(packs),
        tables=sorted(per_table.values(), key=lambda t: (-t.stored_bytes, t.table)),
        largest_agents=largest,
    )
