"""What an agent restore is asked to do (:class:`Options`) and what it reports: per agent, per
table, per entity (:class:`Action`), bytes read from the snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Mode(StrEnum):
    IN_PLACE = "in-place"
    COPY = "copy"


class SharedPolicy(StrEnum):
    MISSING = "missing"  # restore shared rows only when they are missing (default)
    OVERWRITE = "overwrite"  # roll shared rows back too (other agents see the change)
    COPY = "copy"  # copy mode only: give the copy its own copies of shared blocks and archives


class Action(StrEnum):
    INSERT = "insert"  # missing live: written from the snapshot
    OVERWRITE = "overwrite"  # exists live: rolled back to the snapshot
    KEEP = "keep"  # exists live and shared: left as it is now
    COPY = "copy"  # written under a new id (copy mode)
    REUSE = "reuse"  # the copy points to the live row as it is
    MATCH = "match"  # missing by id, but a live row has the same name: references point to it
    SKIP = "skip"  # not restored (a copy does not join groups it does not manage)


WRITTEN = (Action.INSERT, Action.OVERWRITE, Action.COPY)


@dataclass(frozen=True)
class Options:
    mode: Mode = Mode.IN_PLACE
    shared: SharedPolicy = SharedPolicy.MISSING
    dry_run: bool = False
    force: bool = False
    org: str | None = None  # copy mode: target organization
    suffix: str = " (restored)"  # copy mode: appended to agent names


class EntityDecision(BaseModel):
    kind: str
    id: str
    label: str = ""
    action: Action
    target_id: str | None = None  # the id written/pointed to, when it differs
    used_by: int = 0  # live agents outside the restored set using it now
    affects: list[str] = Field(default_factory=list)  # those of them that see a change (overwrite)


class TablePlan(BaseModel):
    table: str
    snapshot_rows: int = 0  # rows of the subgraph in the snapshot
    write: int = 0  # rows staged for writing after decisions
    remove: int = 0  # live rows of the restored scope the snapshot does not have (deleted)
    written: int | None = None  # rows actually inserted or changed (None in a dry run)


class AgentPlanEntry(BaseModel):
    id: str
    name: str
    new_id: str | None = None
    live: bool = False  # the agent exists in the live database now
    requested: bool = True  # False: pulled in (member of a group it manages)


class ReadStats(BaseModel):
    blobs: int = 0
    bytes: int = 0  # stored (compressed, encrypted) bytes fetched
    raw_bytes: int = 0
    snapshot_bytes: int = 0  # stored bytes of every distinct blob of the snapshot
    seconds: float = 0.0

    @property
    def share(self) -> float:
        return self.bytes / self.snapshot_bytes if self.snapshot_bytes else 0.0


class AgentRestoreReport(BaseModel):
    snapshot: str
    mode: Mode
    shared_policy: SharedPolicy
    dry_run: bool
    database: str
    agents: list[AgentPlanEntry]
    tables: list[TablePlan]
    entities: list[EntityDecision]
    read: ReadStats
    warnings: list[str] = Field(default_factory=list)
    refused: str | None = None  # dry run: why the real run would be refused
    redis: str | None = None  # what happened with Letta's Redis
    seconds: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["read"]["share"] = round(self.read.share, 5)
        data["seconds"] = round(self.seconds, 3)
        data["bytes_read"] = self.read.bytes
        data["snapshot_bytes"] = self.read.snapshot_bytes
        return data
