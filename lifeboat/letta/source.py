"""What a backup records about the Letta deployment it read, all from inside the backup's snapshot.

:class:`LettaDocument` is the snapshot's ``letta`` document (docs/FORMAT.md, "Database
snapshots"); :mod:`lifeboat.ops.snapshot_layout` places it in the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from lifeboat.letta.catalog import AgentEntry, catalog_from_rows, catalog_sql
from lifeboat.letta.revisions import release_label
from lifeboat.letta.runs import runs_in_flight_sql

Query = Callable[[str], list[tuple[Any, ...]]]


class RunInFlight(BaseModel):
    """A run in state ``created``/``running`` at the snapshot instant (docs/LETTA.md, runs)."""

    run_id: str
    agent_id: str | None = None
    status: str
    created_at: str | None = None  # PostgreSQL's text form of runs.created_at
    pending_steps: int = 0  # its steps still PENDING


class LettaDocument(BaseModel):
    """The Letta deployment a snapshot holds: revision, release, agent catalog, runs in flight."""

    model_config = ConfigDict(extra="allow")  # newer writers may add fields; keep them

    letta: bool = False  # False: the database holds no Letta schema (only ``letta`` is written)
    revision: str | None = None  # alembic_version.version_num
    release: str | None = None  # the Letta release(s) with that head, e.g. "0.16.7/0.16.8"
    agents: list[AgentEntry] | None = None  # None: the catalog could not be read (see warning)
    runs_in_flight: list[RunInFlight] = []
    warning: str | None = None


def describe_deployment(query: Query, tables: set[str]) -> LettaDocument:
    """Revision, release, agent catalog and runs in flight, or ``letta=False`` for a non-Letta db.

    ``tables`` are the unqualified names of the tables in the Letta schema; ``query`` runs SQL with
    that schema on the search_path, inside the backup's snapshot.
    """
    if "agents" not in tables or "alembic_version" not in tables:
        return LettaDocument(letta=False)
    rows = query("SELECT version_num FROM alembic_version")
    revision = rows[0][0] if rows else None
    described = LettaDocument(letta=True, revision=revision, release=release_label(revision))
    try:
        described.agents = catalog_from_rows(query(catalog_sql(tables)))
        described.runs_in_flight = [
            RunInFlight(run_id=r[0], agent_id=r[1], status=r[2], created_at=r[3], pending_steps=r[4])
            for r in query(runs_in_flight_sql(tables))
        ]
    except Exception as exc:  # a revision whose columns differ: the data backup still goes on
        described.warning = f"agent catalog unavailable for revision {revision}: {str(exc).splitlines()[0]}"
    return described
