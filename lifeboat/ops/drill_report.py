"""The drill report's models: what ``lifeboat drill --json`` prints and ``drills/<id>`` stores.

Their own module so that both the drill (which fills them) and the HTML renderer (which reads
them) depend on it, and not on each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

REPORT_FORMAT = "lifeboat.drill/1"


class Phase(BaseModel):
    name: str
    seconds: float
    ok: bool
    detail: str = ""


class SmokeReport(BaseModel):
    agents_listed: int = 0
    agents_in_snapshot: int = 0
    agent_id: str | None = None
    agent_name: str | None = None
    memory_blocks: int = 0
    messages: int = 0
    reply_messages: int = 0
    server_start_seconds: float = 0.0
    steps: dict[str, float] = Field(default_factory=dict)


class DrillReport(BaseModel):
    """What ``lifeboat drill --json`` prints and what ``drills/<id>`` stores (docs/JSON.md)."""

    format: str = REPORT_FORMAT
    id: str
    repository: str
    snapshot: str
    snapshot_time: datetime
    snapshot_tags: list[str]
    letta_release: str | None = None
    target: str
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool = False
    failed_phase: str | None = None
    reason: str | None = None
    exit_code: int = 0
    seconds: float = 0.0
    rto_seconds: float | None = None
    service_rto_seconds: float | None = None
    phases: list[Phase] = Field(default_factory=list)
    tables: int = 0
    rows: int = 0
    raw_bytes: int = 0
    verify_summary: dict[str, int] = Field(default_factory=dict)
    verify_errors: list[str] = Field(default_factory=list)
    equal: bool | None = Field(
        default=None, description="the restored database equals the snapshot row by row (None: not compared)"
    )
    compare_summary: dict[str, int] = Field(default_factory=dict)
    compare_differences: list[str] = Field(
        default_factory=list, description="per differing table or sequence"
    )
    smoke: SmokeReport | None = None
    upgrade: dict[str, Any] | None = Field(
        default=None,
        description="drill --upgrade-to: plan, migrations run, what they drop (ops/drill_upgrade.py)",
    )
    files: dict[str, str] = Field(default_factory=dict)

    def phase_seconds(self) -> dict[str, float]:
        return {phase.name: phase.seconds for phase in self.phases}
