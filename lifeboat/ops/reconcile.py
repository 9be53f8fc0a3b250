"""``lifeboat reconcile``: repair crash leftovers and drift, dry run unless told to apply.

Database repairs are planned and applied in ONE transaction (all or nothing); Redis keys are
judged against the database state the transaction leaves and deleted afterwards.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from pydantic import BaseModel, Field

from lifeboat.errors import RedisUnavailable, UsageError
from lifeboat.letta.locate import find_letta_schema, use_letta_schema
from lifeboat.letta.redis_repairs import apply_redis_repairs, plan_redis_repairs
from lifeboat.letta.repairs import Change, RepairOptions, RepairPlan, apply_repairs, plan_repairs
from lifeboat.ops.redis import client as target_client
from lifeboat.pg.connect import connection, describe_target
from lifeboat.redact import redact
from lifeboat.settings import RedisTarget

REPORT_FORMAT = "lifeboat.reconcile/1"
# A live server's row locks are short; do not hang behind a stuck session.
LOCK_TIMEOUT = "10s"


class ReconcileReport(BaseModel):
    """What ``lifeboat reconcile --json`` prints (schema documented in docs/VERIFY.md)."""

    format: str = REPORT_FORMAT
    database: str
    letta_schema: str | None
    redis: str | None = Field(description="host:port of the Redis that was reconciled, or null")
    applied: bool = Field(description="false for a dry run: nothing was changed")
    older_than_seconds: float
    server_stopped: bool
    started_at: datetime
    seconds: float
    planned: list[Change]
    changed: list[Change] = Field(description="changes made (empty on a dry run)")
    skipped: list[Change] = Field(
        description="planned changes not made because the row/key changed meanwhile"
    )
    unrepairable: list[str]
    summary: dict[str, int] = Field(description="planned changes per repair")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> timedelta:
    """``90``, ``30s``, ``5m``, ``2h``, ``1d`` → timedelta (bare numbers are seconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"not a duration: {text!r} (use e.g. 30s, 5m, 2h)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def redis_client(target: RedisTarget | None = None, url: str | None = None) -> Any:
    """A decoding redis-py client for a URL or a settings target, checked with PING."""
    import redis

    if url:
        where = redact(url)
        try:
            client = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
            )
        except ValueError as exc:
            raise UsageError(f"--redis-url {where}: {redact(str(exc))}") from None
    elif target is not None:
        client = target_client(target, decode_responses=True)
        where = f"{target.host}:{target.port}"
    else:
        return None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RedisUnavailable(f"cannot reach Redis at {where}: {exc}") from exc
    return client


def reconcile_database(
    dsn: str, *, apply: bool, options: RepairOptions, redis: Any = None, redis_label: str | None = None
) -> ReconcileReport:
    with connection(dsn) as conn:
        return reconcile_connection(
            conn,
            apply=apply,
            options=options,
            redis=redis,
            database=describe_target(dsn),
            redis_label=redis_label,
        )


def reconcile_connection(
    conn: psycopg.Connection[Any],
    *,
    apply: bool,
    options: RepairOptions,
    redis: Any = None,
    database: str = "",
    redis_label: str | None = None,
) -> ReconcileReport:
    """Plan (and with ``apply``, make) every repair on an autocommit connection."""
    started_at, started = datetime.now(UTC), time.perf_counter()
    with conn.transaction():
        if not apply:
            conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        schema = find_letta_schema(conn)
        plan, changed = RepairPlan(), []
        if schema is not None:
            use_letta_schema(conn, schema)
            plan = plan_repairs(conn, options)
            if apply:
                changed = apply_repairs(conn, plan, options)
    redis_planned, redis_changed = _reconcile_redis(conn, schema, redis, plan, options, apply)
    planned = plan.changes + redis_planned
    changed += redis_changed
    changed_keys = {(c.repair, c.id) for c in changed}
    summary: dict[str, int] = {}
    for change in planned:
        summary[change.repair] = summary.get(change.repair, 0) + 1
    unrepairable = list(plan.unrepairable)
    if schema is None:
        unrepairable.append("no schema of this database holds Letta's tables: nothing reconciled")
    return ReconcileReport(
        database=database,
        letta_schema=schema,
        redis=redis_label,
        applied=apply,
        older_than_seconds=options.threshold_seconds(),
        server_stopped=options.server_stopped,
        started_at=started_at,
        seconds=round(time.perf_counter() - started, 3),
        planned=planned,
        changed=changed,
        skipped=[c for c in planned if apply and (c.repair, c.id) not in changed_keys],
        unrepairable=unrepairable,
        summary=summary,
    )


def _reconcile_redis(
    conn: psycopg.Connection[Any],
    schema: str | None,
    redis: Any,
    plan: RepairPlan,
    options: RepairOptions,
    apply: bool,
) -> tuple[list[Change], list[Change]]:
    if redis is None or schema is None:
        return [], []
    import redis as redis_module

    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            use_letta_schema(conn, schema)
            planned = plan_redis_repairs(redis, conn, plan, options)
        return planned, apply_redis_repairs(redis, planned) if apply else []
    except redis_module.RedisError as exc:
        raise RedisUnavailable(f"Redis failed during reconcile: {exc}") from exc
