"""Is the database a restore would replace the same Letta deployment as the snapshot's source?

Letta has no deployment id: the default organization and user carry the same fixed ids in every
deployment. Agent ids are random (uuid4) and never reused, so two states of one deployment share
agents (some may have been created or deleted in between) while two deployments share none.
When either side has no agents there is nothing to compare and the answer is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from lifeboat.letta.locate import find_letta_schema, use_letta_schema
from lifeboat.letta.source import LettaDocument


@dataclass(frozen=True)
class DeploymentOnTarget:
    """What the target database holds: ``agent_ids`` is None when it holds no Letta deployment."""

    agent_ids: frozenset[str] | None


def snapshot_agent_ids(letta: LettaDocument) -> frozenset[str] | None:
    """Agent ids of a snapshot's catalog; None for a snapshot of a non-Letta database."""
    if not letta.letta:
        return None
    return frozenset(entry.id for entry in letta.agents or [])


def read_target(conn: psycopg.Connection[Any]) -> DeploymentOnTarget:
    """Agent ids in the database ``conn`` is connected to (None: it holds no Letta deployment)."""
    with conn.transaction():
        schema = find_letta_schema(conn)
        if schema is None:
            return DeploymentOnTarget(None)
        use_letta_schema(conn, schema)
        rows = conn.execute("SELECT id FROM agents").fetchall()
    return DeploymentOnTarget(frozenset(str(row[0]) for row in rows))


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
