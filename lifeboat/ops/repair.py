"""What a damaged snapshot costs in Letta terms: the agents that may lose rows (``lifeboat repair snapshots``).

The repository layer reports, per damaged stream, the zone-map key ranges of the lost blobs.
For Letta's agent-keyed tables (streams ordered by ``agent_id``, and ``agents`` by ``id``) every
agent of the snapshot whose id falls in such a range may lose rows of that table.
"""

from __future__ import annotations

from typing import Any

from lifeboat.repo.repair import SnapshotDamage, StreamDamage
from lifeboat.repo.repository import Repository


def agents_losing_rows(repo: Repository, damage: SnapshotDamage) -> dict[str, list[str]]:
    """Agent id -> damaged tables (stream names) of that agent, for one readable damaged snapshot."""
    if not damage.readable:
        return {}
    snapshot = repo.read_snapshot(damage.snapshot)
    agents = sorted(str(entry["id"]) for entry in _catalog(snapshot.documents) if "id" in entry)
    losing: dict[str, list[str]] = {}
    for stream in damage.streams:
        if not _agent_keyed(stream):
            continue
        for agent_id in agents:
            if any(_within(agent_id, low, high) for low, high in stream.key_ranges):
                losing.setdefault(agent_id, []).append(stream.stream)
    return losing


def _catalog(documents: dict[str, Any]) -> list[dict[str, Any]]:
    letta = documents.get("letta")
    agents = letta.get("agents") if isinstance(letta, dict) else None
    return [entry for entry in agents if isinstance(entry, dict)] if isinstance(agents, list) else []


def _agent_keyed(stream: StreamDamage) -> bool:
    return stream.key == "agent_id" or (stream.key == "id" and stream.stream.endswith(".agents"))


def _within(key: str, low: str | None, high: str | None) -> bool:
    return low is None or high is None or low <= key <= high
