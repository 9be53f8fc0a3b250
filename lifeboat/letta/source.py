"""What a backup records about the Letta deployment it read, all from inside the backup's snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifeboat.letta.catalog import catalog_from_rows, catalog_sql
from lifeboat.letta.revisions import release_label
from lifeboat.letta.runs import runs_in_flight_sql

Query = Callable[[str], list[tuple[Any, ...]]]


def describe_deployment(query: Query, tables: set[str]) -> dict[str, Any]:
    """Revision, release, agent catalog and runs in flight, or ``{"letta": False}`` for a non-Letta db.

    ``tables`` are the unqualified names of the tables in the Letta schema; ``query`` runs SQL with
    that schema on the search_path, inside the backup's snapshot.
    """
    if "agents" not in tables or "alembic_version" not in tables:
        return {"letta": False}
    rows = query("SELECT version_num FROM alembic_version")
    revision = rows[0][0] if rows else None
    described: dict[str, Any] = {"letta": True, "revision": revision, "release": release_label(revision)}
    try:
        described["agents"] = [entry.model_dump() for entry in catalog_from_rows(query(catalog_sql(tables)))]
        described["runs_in_flight"] = [
            {"run_id": r[0], "agent_id": r[1], "status": r[2], "created_at": r[3], "pending_steps": r[4]}
            for r in query(runs_in_flight_sql(tables))
        ]
    except Exception as exc:  # a revision whose columns differ: the data backup still goes on
        described["warning"] = (
            f"agent catalog unavailable for revision {revision}: {str(exc).splitlines()[0]}"
        )
    return described
