"""``restore --partial``: what a damaged snapshot still holds goes in, what it lost is reported.

The loss is computed exactly as ``lifeboat repair snapshots`` computes it
(:func:`lifeboat.repo.repair.damaged_snapshots` over a read-every-blob check of this one snapshot,
then :func:`lifeboat.ops.repair.agents_losing_rows`). Blobs are record-aligned, so leaving the
lost blobs out of a table's COPY stream loads every other row of that table.

A foreign key that references a table which lost rows may now point at nothing. Such keys are
created ``NOT VALID`` (PostgreSQL enforces them for new rows but does not check existing ones);
after the load each is validated, and only those whose check fails stay ``NOT VALID`` and are
reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.ops.repair import agents_losing_rows
from lifeboat.pg.models import DatabaseSchema, QualifiedName
from lifeboat.repo.check import CheckReport
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repair import damaged_snapshots
from lifeboat.repo.repository import Repository


@dataclass
class TableLoss:
    table: str  # schema.table
    stream: str
    rows_lost: int
    blobs_lost: int


@dataclass
class PartialLoss:
    """What a partial restore could not bring back (``--json``: the ``partial`` object)."""

    lost_blobs: set[str]
    tables: list[TableLoss]
    agents: dict[str, list[str]]  # agent id -> streams of that agent that lost rows
    foreign_keys_not_valid: list[str] = field(default_factory=list)  # schema.table.constraint

    @property
    def rows_lost(self) -> int:
        return sum(table.rows_lost for table in self.tables)

    def damaged_tables(self) -> set[str]:
        return {table.table for table in self.tables}

    def summary(self) -> dict[str, Any]:
        return {
            "tables": [vars(table) for table in self.tables],
            "rows_lost": self.rows_lost,
            "blobs_lost": len(self.lost_blobs),
            "agents": {agent: sorted(streams) for agent, streams in sorted(self.agents.items())},
            "foreign_keys_not_valid": self.foreign_keys_not_valid,
        }


def assess_loss(repo: Repository, snapshot: Snapshot, report: CheckReport) -> PartialLoss:
    """The loss a failed ``verify_snapshot(read_data=True)`` report means for ``snapshot``."""
    lost = set(report.damaged_blobs)
    damage = next((d for d in damaged_snapshots(repo, report) if d.snapshot == snapshot.id), None)
    streams = {stream.name: stream for stream in snapshot.streams}
    tables = []
    for item in damage.streams if damage is not None else []:
        attributes = streams[item.stream].attributes
        name = (
            f"{attributes.get('schema')}.{attributes.get('table')}" if "table" in attributes else item.stream
        )
        tables.append(TableLoss(name, item.stream, item.records_lost, item.blobs_lost))
    agents = agents_losing_rows(repo, damage) if damage is not None else {}
    return PartialLoss(lost, sorted(tables, key=lambda t: t.table), agents)


Relaxed = list[tuple[QualifiedName, str]]  # (table, constraint name)


def relax_foreign_keys(schema: DatabaseSchema, loss: PartialLoss) -> tuple[DatabaseSchema, Relaxed]:
    """``schema`` with every foreign key into a table that lost rows made ``NOT VALID``; and those keys."""
    damaged = loss.damaged_tables()
    relaxed: Relaxed = []
    tables = []
    for table in schema.tables:
        constraints = []
        for constraint in table.constraints:
            if constraint.kind == "f" and constraint.validated and str(constraint.references) in damaged:
                constraint = constraint.model_copy(
                    update={"definition": f"{constraint.definition} NOT VALID", "validated": False}
                )
                relaxed.append((table.qualified, constraint.name))
            constraints.append(constraint)
        tables.append(table.model_copy(update={"constraints": constraints}))
    return schema.model_copy(update={"tables": tables}), relaxed


def validate_foreign_keys(conn: psycopg.Connection, relaxed: Relaxed) -> list[str]:
    """Validate the relaxed keys (autocommit ``conn``); returns those that still point at lost rows
    (``schema.table.constraint``), which stay ``NOT VALID``."""
    invalid = []
    for table, constraint in relaxed:
        statement = sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
            table.identifier(), sql.Identifier(constraint)
        )
        try:
            conn.execute(statement)
        except psycopg.errors.ForeignKeyViolation:
            invalid.append(f"{table}.{constraint}")
    return invalid
