"""The doctor's report model: check statuses, one check, the report, its inputs, and the run collecting them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from lifeboat.settings import RedisTarget

REPORT_FORMAT = "lifeboat.doctor/1"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class DoctorCheck(BaseModel):
    name: str
    status: Status
    message: str
    hint: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class DoctorReport(BaseModel):
    """What ``lifeboat doctor --json`` prints (docs/JSON.md)."""

    format: str = REPORT_FORMAT
    ok: bool = Field(description="no check failed")
    summary: dict[str, int]
    checks: list[DoctorCheck]


@dataclass
class DoctorInputs:
    """Where to look. ``target_dsn`` is the admin DSN restores would use (None: the database DSN)."""

    dsn: str | None
    repository: str | None
    passphrase: str | None = None
    redis: RedisTarget | None = None
    target_dsn: str | None = None
    max_age: timedelta = timedelta(hours=26)
    scratch_dir: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    server_url: str | None = None  # the running Letta server, to compare its version with the schema


class Run:
    """Collects checks; remembers facts later checks need."""

    def __init__(self) -> None:
        self.checks: list[DoctorCheck] = []
        self.database_bytes: int | None = None
        self.snapshot_bytes: int | None = None
        self.data_directory: str | None = None
        self.revision: str | None = None

    def add(self, name: str, status: Status, message: str, hint: str | None = None, **details: Any) -> None:
        self.checks.append(DoctorCheck(name=name, status=status, message=message, hint=hint, details=details))
