"""What ``lifeboat verify --against`` reports (``--json``: docs/VERIFY.md), per table, agent and sequence."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

REPORT_FORMAT = "lifeboat.verify_against/1"


class ChangedRow(BaseModel):
    key: str
    columns: list[str]


class TableReport(BaseModel):
    table: str
    rows_snapshot: int
    rows_database: int
    missing: int
    extra: int
    changed: int
    changed_columns: dict[str, int] = Field(default_factory=dict)
    missing_rows: list[str] = Field(default_factory=list, description="row keys, at most 100")
    extra_rows: list[str] = Field(default_factory=list)
    changed_rows: list[ChangedRow] = Field(default_factory=list)
    after_snapshot: int | None = Field(default=None, description="--since-snapshot: written after it")
    unexplained: int | None = Field(default=None, description="--since-snapshot: the other differences")
    note: str = ""


class AgentReport(BaseModel):
    agent_id: str
    missing: int = 0
    extra: int = 0
    changed: int = 0
    tables: list[str] = Field(default_factory=list)


class SequenceReport(BaseModel):
    sequence: str
    snapshot: int | None
    database: int | None


class AgainstReport(BaseModel):
    """What ``lifeboat verify --against --json`` prints (docs/VERIFY.md)."""

    format: str = REPORT_FORMAT
    database: str
    snapshot: str
    snapshot_time: datetime
    agents_compared: list[str] = Field(default_factory=list, description="--agent ids; empty: everything")
    since_snapshot: bool = False
    started_at: datetime
    seconds: float
    equal: bool = Field(description="no row or sequence differs")
    ok: bool = Field(description="equal, or with --since-snapshot: every difference was written after it")
    summary: dict[str, int]
    tables: list[TableReport]
    agents: list[AgentReport]
    sequences: list[SequenceReport] = Field(default_factory=list)
