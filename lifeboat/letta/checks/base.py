"""The vocabulary of ``lifeboat verify``: findings, the check registry and the runner.

A *check* is a small function over a :class:`CheckContext` (one read-only connection, positioned
on the Letta schema) that yields :class:`Finding` objects. Checks are independent: each runs in
its own savepoint, so one failing query cannot hide the others' results, and all of them see the
same REPEATABLE READ snapshot of the database.

Checks must be set-based: every row-level rule is one SQL statement that returns only the
offending rows (see :func:`offenders`), never a Python loop over table rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field

Query = sql.SQL | sql.Composed | str

#: How many offending row ids a finding lists (``count`` always holds the total).
MAX_IDS = 100


class Severity(StrEnum):
    ERROR = "error"  # the database is inconsistent: Letta may fail or silently misbehave
    WARNING = "warning"  # suspicious or transient state (crash leftovers, drift Letta tolerates)
    INFO = "info"  # expected oddities worth knowing (orphans, skipped checks)


SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Finding(BaseModel):
    """One defect kind in one table, with the rows that show it."""

    severity: Severity
    check: str = Field(description="finding code, e.g. 'message_ids.dangling'")
    table: str
    ids: list[str] = Field(default_factory=list, description=f"offending row ids (at most {MAX_IDS})")
    count: int = Field(default=0, description="total number of offending rows")
    related: list[str] = Field(
        default_factory=list, description="other ids involved (missing targets, foreign owners...)"
    )
    message: str
    fix: str = ""


class CheckStatus(StrEnum):
    OK = "ok"  # ran, nothing found
    FOUND = "found"  # ran, produced findings
    SKIPPED = "skipped"  # a table it needs is absent
    FAILED = "failed"  # its SQL raised; reported as a finding too


class CheckOutcome(BaseModel):
    name: str
    title: str
    status: CheckStatus
    seconds: float
    findings: list[Finding] = Field(default_factory=list)


@dataclass(frozen=True)
class Offenders:
    """The result of an offender query: total count, the first ids, and related ids."""

    count: int
    ids: list[str]
    related: list[str]

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass
class CheckContext:
    """What a check may look at: the connection and the shape of the schema it runs against."""

    conn: psycopg.Connection[Any]
    schema: str
    columns: dict[str, dict[str, str]]  # table -> column -> formatted type
    row_keys: dict[str, tuple[str, ...]]  # table -> columns that identify a row
    revision: str | None = None
    encryption_key: str | None = None
    server_stopped: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def has(self, table: str, *columns: str) -> bool:
        present = self.columns.get(table)
        return present is not None and all(column in present for column in columns)

    def row_label(self, table: str, alias: str) -> sql.Composable:
        """An SQL text expression naming one row of ``table`` (its id, or its key columns joined by '/')."""
        keys = self.row_keys.get(table) or tuple(sorted(self.columns.get(table, {})))[:3]
        parts = [sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(key)) for key in keys]
        if len(parts) == 1:
            return parts[0]
        return sql.SQL("concat_ws('/', {})").format(sql.SQL(", ").join(parts))

    def scalar(self, query: Query, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(_as_query(query), params or None).fetchone()
        return None if row is None else row[0]

    def rows(self, query: Query, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(_as_query(query), params or None).fetchall()

    def offenders(self, query: Query, params: Sequence[Any] = ()) -> Offenders:
        """Run ``query`` (columns ``id text, related text``: one row per offending pair) and summarize it.

        Rows are grouped by ``id``; ``count`` is the number of distinct ids. Only the first
        :data:`MAX_IDS` ids (in id order) and their related ids come back to Python.
        """
        wrapped = sql.SQL(
            """
            WITH bad AS ({inner}),
            grouped AS (
              SELECT id, array_remove(array_agg(DISTINCT related), NULL) AS related FROM bad GROUP BY id
            )
            SELECT count(*) OVER (), id, related FROM grouped ORDER BY id LIMIT {limit}
            """
        ).format(inner=_as_query(query), limit=sql.Literal(MAX_IDS))
        found = self.conn.execute(wrapped, params or None).fetchall()
        if not found:
            return Offenders(0, [], [])
        related: list[str] = []
        for row in found:
            related.extend(value for value in row[2] if value not in related)
        return Offenders(int(found[0][0]), [row[1] for row in found], related[:MAX_IDS])


def _as_query(query: Query) -> sql.SQL | sql.Composed:
    return sql.SQL(query) if isinstance(query, str) else query


CheckFunction = Callable[[CheckContext], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    run: CheckFunction
    needs: tuple[str, ...]  # tables that must exist for the check to run
    codes: tuple[str, ...]  # finding codes it may produce (documentation + tests)


REGISTRY: dict[str, Check] = {}


def check(
    name: str, title: str, *, needs: Sequence[str] = (), codes: Sequence[str] = ()
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under ``name``."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = Check(name, title, function, tuple(needs), tuple(codes))
        return function

    return register


def finding(
    severity: Severity,
    code: str,
    table: str,
    message: str,
    fix: str = "",
    offenders: Offenders | None = None,
) -> Finding:
    """Build a finding; ``offenders`` supplies ids/count/related when the defect is row-level."""
    if offenders is None:
        return Finding(severity=severity, check=code, table=table, count=0, message=message, fix=fix)
    return Finding(
        severity=severity,
        check=code,
        table=table,
        ids=offenders.ids,
        count=offenders.count,
        related=offenders.related,
        message=message,
        fix=fix,
    )


def row_findings(
    ctx: CheckContext,
    severity: Severity,
    code: str,
    table: str,
    query: Query,
    message: str,
    fix: str = "",
    params: Sequence[Any] = (),
) -> Iterator[Finding]:
    """Yield one finding when ``query`` (see :meth:`CheckContext.offenders`) returns rows.

    ``message`` may use ``{count}`` which is filled with the number of offending rows.
    """
    found = ctx.offenders(query, params)
    if found:
        yield finding(severity, code, table, message.format(count=found.count), fix, found)


def run_checks(ctx: CheckContext, only: Iterable[str] | None = None) -> list[CheckOutcome]:
    """Run the registered checks (or the ``only`` subset) inside the caller's transaction."""
    selected = list(REGISTRY.values()) if only is None else [REGISTRY[name] for name in only]
    return [_run_one(ctx, one) for one in selected]


def _run_one(ctx: CheckContext, one: Check) -> CheckOutcome:
    started = time.perf_counter()
    missing = [table for table in one.needs if table not in ctx.columns]
    if missing:
        return CheckOutcome(
            name=one.name, title=one.title, status=CheckStatus.SKIPPED, seconds=0.0, findings=[]
        )
    try:
        with ctx.conn.transaction():  # a savepoint: a failing query leaves the others usable
            findings = list(one.run(ctx))
    except psycopg.Error as exc:
        failure = finding(
            Severity.ERROR,
            "verify.check_failed",
            "-",
            f"check {one.name} could not run: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}",
            "the schema probably differs from what lifeboat expects; see the schema.* findings",
        )
        return CheckOutcome(
            name=one.name,
            title=one.title,
            status=CheckStatus.FAILED,
            seconds=time.perf_counter() - started,
            findings=[failure],
        )
    status = CheckStatus.FOUND if findings else CheckStatus.OK
    return CheckOutcome(
        name=one.name,
        title=one.title,
        status=status,
        seconds=time.perf_counter() - started,
        findings=findings,
    )


def all_codes() -> list[str]:
    """Every finding code any registered check can produce."""
    codes = {"verify.check_failed"}
    for one in REGISTRY.values():
        codes.update(one.codes)
    return sorted(codes)
