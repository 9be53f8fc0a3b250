"""``lifeboat verify``: run every Letta check on one database, in one consistent read-only snapshot."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import BaseModel, Field

from lifeboat.letta import revisions
from lifeboat.letta.checks import (
    CheckOutcome,
    CheckStatus,
    Finding,
    Severity,
    build_context,
    run_checks,
)
from lifeboat.letta.checks.base import SEVERITY_ORDER
from lifeboat.letta.locate import find_letta_schema
from lifeboat.pg.connect import connection, describe_target

REPORT_FORMAT = "lifeboat.verify/1"


class CheckSummary(BaseModel):
    name: str
    title: str
    status: CheckStatus
    seconds: float
    findings: int


class VerifyReport(BaseModel):
    """What ``lifeboat verify --json`` prints (schema documented in docs/VERIFY.md)."""

    format: str = REPORT_FORMAT
    database: str = Field(description="user@host:port/dbname, without password")
    letta_schema: str | None
    revision: str | None
    release: str
    started_at: datetime
    seconds: float
    ok: bool = Field(description="no error-level findings")
    summary: dict[str, int] = Field(description="number of findings per severity")
    checks: list[CheckSummary]
    findings: list[Finding]

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    def codes(self, severity: Severity | None = None) -> set[str]:
        return {f.check for f in self.findings if severity is None or f.severity is severity}


def verify_database(
    dsn: str, *, encryption_key: str | None = None, only: list[str] | None = None
) -> VerifyReport:
    """Connect to ``dsn`` and verify it (see :func:`verify_connection`)."""
    with connection(dsn) as conn:
        return verify_connection(
            conn, database=describe_target(dsn), encryption_key=encryption_key, only=only
        )


def verify_connection(
    conn: psycopg.Connection[Any],
    *,
    database: str = "",
    encryption_key: str | None = None,
    only: list[str] | None = None,
) -> VerifyReport:
    """Run the checks in one REPEATABLE READ, READ ONLY transaction on an autocommit connection."""
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        schema = find_letta_schema(conn)
        if schema is None:
            outcomes = [_not_letta_outcome()]
            revision = None
        else:
            ctx = build_context(conn, schema, encryption_key=encryption_key)
            outcomes = run_checks(ctx, only)
            revision = ctx.revision
    return build_report(outcomes, database, schema, revision, started_at, time.perf_counter() - started)


def _not_letta_outcome() -> CheckOutcome:
    found = Finding(
        severity=Severity.ERROR,
        check="schema.not_letta",
        table="-",
        message="no schema of this database holds Letta's tables (agents, messages, block)",
        fix="point --db at the Letta database (LETTA_PG_URI), or restore it first",
    )
    return CheckOutcome(
        name="schema", title="Letta schema present", status=CheckStatus.FOUND, seconds=0.0, findings=[found]
    )


def build_report(
    outcomes: list[CheckOutcome],
    database: str,
    schema: str | None,
    revision: str | None,
    started_at: datetime,
    seconds: float,
) -> VerifyReport:
    findings = sorted(
        (f for outcome in outcomes for f in outcome.findings),
        key=lambda f: (SEVERITY_ORDER[f.severity], f.check, f.table),
    )
    summary = {severity.value: sum(1 for f in findings if f.severity is severity) for severity in Severity}
    return VerifyReport(
        database=database,
        letta_schema=schema,
        revision=revision,
        release=revisions.release_label(revision),
        started_at=started_at,
        seconds=round(seconds, 3),
        ok=summary[Severity.ERROR.value] == 0,
        summary=summary,
        checks=[
            CheckSummary(
                name=o.name,
                title=o.title,
                status=o.status,
                seconds=round(o.seconds, 3),
                findings=len(o.findings),
            )
            for o in outcomes
        ],
        findings=findings,
    )
