"""What a backup records about the Letta deployment it read, all from inside the backup's snapshot.

:class:`LettaDocument` is the snapshot's ``letta`` document (docs/FORMAT.md, "Database
snapshots"); :mod:`lifeboat.ops.snapshot_layout` places it in the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from lifeboat.letta.catalog import AgentEntry, catalog_from_rows, catalog_query_digest, catalog_sql
from lifeboat.letta.revisions import release_label
from lifeboat.letta.runs import runs_in_flight_sql

Query = Callable[[str], list[tuple[Any, ...]]]
# How the agent catalog is read: (query, the catalog statement) -> entries.
ReadCatalog = Callable[[Query, str], list[AgentEntry]]


def query_catalog(query: Query, statement: str) -> list[AgentEntry]:
    """Every agent's entry, computed by the server."""
    return catalog_from_rows(query(statement))


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
    # how the entries were computed (catalog_query_digest); before ``agents``, which a reader
    # sets aside by its place just before ``runs_in_flight`` (lifeboat.ops.snapshot_catalog)
    catalog_query: str | None = None
    agents: list[AgentEntry] | None = None  # None: the catalog could not be read (see warning)
    runs_in_flight: list[RunInFlight] = []
    warning: str | None = None


def describe_deployment(
    query: Query, tables: set[str], read_catalog: ReadCatalog = query_catalog
) -> LettaDocument:
    """Revision, release, agent catalog and runs in flight, or ``letta=False`` for a non-Letta db.

    ``tables`` are the unqualified names of the tables in the Letta schema; ``query`` runs SQL with
    that schema on the search_path, inside the backup's snapshot; ``read_catalog`` computes the
    entries (last: an incremental backup's waits for what its table copies proved).
    """
    if "agents" not in tables or "alembic_version" not in tables:
        return LettaDocument(letta=False)
    rows = query("SELECT version_num FROM alembic_version")
    revision = rows[0][0] if rows else None
    described = LettaDocument(letta=True, revision=revision, release=release_label(revision))
    try:
        in_flight = [
            RunInFlight(run_id=r[0], agent_id=r[1], status=r[2], created_at=r[3], pending_steps=r[4])
            for r in query(runs_in_flight_sql(tables))
        ]
        statement = catalog_sql(tables)
        described.agents = read_catalog(query, statement)
        described.catalog_query = catalog_query_digest(statement)
        described.runs_in_flight = in_flight
    except Exception as exc:  # a revision whose columns differ: the data backup still goes on
        described.warning = f"agent catalog unavailable for revision {revision}: {str(exc).splitlines()[0]}"
    return described
