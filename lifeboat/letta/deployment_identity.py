"""Is the database a restore would replace the same Letta deployment as the snapshot's source?

Letta has no deployment id: the default organization and user carry the same fixed ids in every
deployment. Agent ids are random (uuid4) and never reused, so two states of one deployment share
agents (some may have been created or deleted in between) while two deployments share none.
When either side has no agents there is nothing to compare and the answer is "unknown".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lifeboat.letta.source import letta_schema_name

Query = Callable[[str], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class DeploymentOnTarget:
    """What the target database holds: ``agent_ids`` is None when it holds no Letta deployment."""

    agent_ids: frozenset[str] | None


def snapshot_agent_ids(documents: dict[str, Any]) -> frozenset[str] | None:
    """Agent ids of a snapshot's catalog; None for a snapshot of a non-Letta database."""
    letta = documents.get("letta") or {}
    if not letta.get("letta"):
        return None
    return frozenset(str(entry["id"]) for entry in letta.get("agents") or [] if "id" in entry)


def read_target(schema_names: Iterable[str], database: str, query: Query) -> DeploymentOnTarget:
    """Agent ids in the target (``query`` runs SQL with the Letta schema on the search_path)."""
    letta_schema = letta_schema_name(list(schema_names), database)
    if letta_schema is None:
        return DeploymentOnTarget(None)
    rows = query("SELECT to_regclass('agents') IS NOT NULL")
    if not rows or not rows[0][0]:
        return DeploymentOnTarget(None)
    return DeploymentOnTarget(frozenset(str(row[0]) for row in query("SELECT id FROM agents")))


def difference(snapshot_ids: frozenset[str] | None, target: DeploymentOnTarget) -> str | None:
    """A sentence saying how the target differs from the snapshot's source, or None (same or unknown)."""
    if target.agent_ids is None and snapshot_ids is not None:
        return "it holds no Letta deployment"
    if target.agent_ids is not None and snapshot_ids is None:
        return f"it holds a Letta deployment ({len(target.agent_ids)} agents) and the snapshot is of another database"
    if not snapshot_ids or not target.agent_ids:
        return None
    if snapshot_ids & target.agent_ids:
        return None
    return (
        f"it holds a different Letta deployment: none of its {len(target.agent_ids)} agents is among the "
        f"snapshot's {len(snapshot_ids)}"
    )
