"""Database repairs for ``lifeboat reconcile``: crash leftovers and drift Letta cannot fix itself.

Every repair is planned first (read-only queries that name each row and its new value) and then
applied with *guarded* statements that only change a row still in the planned state (a run still
active, a ``message_ids`` still textually equal to what was planned on...). So a repair is
idempotent, a live server racing with it wins, and what the report says changed is what changed:
the applied list comes from the statements' ``RETURNING`` clauses.

Repairs (docs/LETTA.md §5, §11):

* ``runs.fail_stale`` — runs ``created``/``running`` with no activity (run or step timestamps) for
  longer than the threshold, or all of them when the server is known to be stopped → ``failed``,
  stop_reason ``error``, completed_at now, and a ``lifeboat_reconcile`` note in metadata_.
* ``steps.fail_pending`` — ``PENDING`` steps of those runs, of terminal or vanished runs, or run-less
  and stale → ``FAILED`` with stop_reason ``error`` (and error_type/error_data when present).
* ``message_ids.clean`` — in-context lists with entries that do not resolve to the agent's own
  default-conversation messages, duplicates, or no system message first → dangling/foreign entries
  and repeats dropped (order kept), the agent's system message moved or restored to the front.
* ``groups.sync_members`` — ``groups.agent_ids`` and ``groups_agents`` made to hold the same
  members: every existing agent either names (JSON order kept, new ones appended), vanished ids dropped.
* ``sequence.bump`` — ``message_seq_id`` moved past max(messages.sequence_id).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field

from lifeboat.letta.runs import ACTIVE_RUN_STATUSES, PENDING_STEP_STATUS
from lifeboat.pg import catalog
from lifeboat.pg.catalog import column_types

NOTE_KEY = "lifeboat_reconcile"
SEQUENCE = "message_seq_id"


class Change(BaseModel):
    """One row (or key) a repair changes, with its state before and after."""

    repair: str
    target: Literal["postgres", "redis"] = "postgres"
    table: str
    id: str
    before: Any = None
    after: Any = None
    note: str = ""


class RepairOptions(BaseModel):
    older_than: timedelta = Field(
        default=timedelta(minutes=5), description="stale after this long without activity"
    )
    server_stopped: bool = Field(default=False, description="every in-flight run is dead, whatever its age")
    reason: str = "left in flight by a server that stopped mid-request"

    def threshold_seconds(self) -> float:
        return 0.0 if self.server_stopped else self.older_than.total_seconds()


class RepairPlan(BaseModel):
    changes: list[Change] = Field(default_factory=list)
    unrepairable: list[str] = Field(default_factory=list, description="problems seen that need a human")

    def of(self, repair: str) -> list[Change]:
        return [change for change in self.changes if change.repair == repair]


Conn = psycopg.Connection[Any]


# ------------------------------------------------------------------------------------------------
# planning


def plan_repairs(conn: Conn, options: RepairOptions) -> RepairPlan:
    """What reconcile would change, read inside the caller's transaction (search_path on the Letta schema)."""
    columns = column_types(conn, _current_schema(conn))
    plan = RepairPlan()
    if "runs" in columns:
        plan.changes += plan_stale_runs(conn, options)
    if "steps" in columns:
        failing = [c.id for c in plan.of("runs.fail_stale")]
        plan.changes += plan_pending_steps(conn, options, failing)
    if "agents" in columns and "messages" in columns:
        changes, unrepairable = plan_message_ids(conn)
        plan.changes += changes
        plan.unrepairable += unrepairable
    if "groups" in columns and "groups_agents" in columns:
        plan.changes += plan_group_members(conn)
    if "messages" in columns:
        plan.changes += plan_sequence(conn)
    return plan


def _current_schema(conn: Conn) -> str:
    return catalog.current_schema(conn) or ""


_STALE_RUNS_SQL = """
WITH active AS (
  SELECT r.id, r.status, r.agent_id, r.conversation_id, GREATEST(r.created_at, r.updated_at) AS touched
  FROM runs r WHERE r.status = ANY (%(active)s)
),
step_activity AS (
  SELECT s.run_id, max(GREATEST(s.created_at, s.updated_at)) AS touched
  FROM steps s WHERE s.run_id IN (SELECT id FROM active) GROUP BY s.run_id
)
SELECT a.id, a.status, a.agent_id, a.conversation_id, GREATEST(a.touched, sa.touched)::text AS last_activity
FROM active a LEFT JOIN step_activity sa ON sa.run_id = a.id
WHERE GREATEST(a.touched, sa.touched) <= now() - make_interval(secs => %(seconds)s)
ORDER BY a.id
"""


def plan_stale_runs(conn: Conn, options: RepairOptions) -> list[Change]:
    params = {"active": list(ACTIVE_RUN_STATUSES), "seconds": options.threshold_seconds()}
    rows = conn.execute(_STALE_RUNS_SQL, params).fetchall()
    return [
        Change(
            repair="runs.fail_stale",
            table="runs",
            id=run_id,
            before={"status": status},
            after={"status": "failed", "stop_reason": "error"},
            note=f"agent {agent_id}"
            + (f", conversation {conversation_id}" if conversation_id else "")
            + f", last activity {last_activity}",
        )
        for run_id, status, agent_id, conversation_id, last_activity in rows
    ]


_PENDING_STEPS_SQL = """
SELECT s.id, s.run_id, r.status AS run_status
FROM steps s LEFT JOIN runs r ON r.id = s.run_id
WHERE s.status::text = %(pending)s
  AND (s.run_id = ANY (%(failing)s)
       OR (r.id IS NOT NULL AND NOT (r.status = ANY (%(active)s)))
       OR (r.id IS NULL AND GREATEST(s.created_at, s.updated_at) <= now() - make_interval(secs => %(seconds)s)))
ORDER BY s.id
"""


def plan_pending_steps(conn: Conn, options: RepairOptions, failing_runs: list[str]) -> list[Change]:
    params = {
        "pending": PENDING_STEP_STATUS,
        "failing": failing_runs,
        "active": list(ACTIVE_RUN_STATUSES),
        "seconds": options.threshold_seconds(),
    }
    changes = []
    for step_id, run_id, run_status in conn.execute(_PENDING_STEPS_SQL, params).fetchall():
        if run_id in failing_runs:
            why = f"its run {run_id} is being failed"
        elif run_id is None or run_status is None:
            why = "it has no run and no activity within the threshold"
        else:
            why = f"its run {run_id} is already {run_status}"
        changes.append(
            Change(
                repair="steps.fail_pending",
                table="steps",
                id=step_id,
                before={"status": PENDING_STEP_STATUS},
                after={"status": "FAILED", "stop_reason": "error"},
                note=why,
            )
        )
    return changes


# Agents whose message_ids need cleaning, with per-entry facts for the ones that do.
_BROKEN_CONTEXTS_SQL = """
WITH entries AS (
  SELECT a.id AS agent_id, e.value AS message_id, e.ord
  FROM agents a, json_array_elements_text(a.message_ids) WITH ORDINALITY AS e(value, ord)
  WHERE json_typeof(a.message_ids) = 'array'
    AND NOT EXISTS (SELECT 1 FROM json_array_elements(a.message_ids) x WHERE json_typeof(x) <> 'string')
),
facts AS (
  SELECT e.agent_id, e.message_id, e.ord,
         (m.id IS NOT NULL AND m.agent_id = e.agent_id AND m.conversation_id IS NULL) AS usable,
         m.role,
         row_number() OVER (PARTITION BY e.agent_id, e.message_id ORDER BY e.ord) AS occurrence
  FROM entries e LEFT JOIN messages m ON m.id = e.message_id
),
broken AS (
  SELECT agent_id FROM facts
  GROUP BY agent_id
  HAVING bool_or(NOT usable) OR bool_or(occurrence > 1)
      OR bool_or(ord = 1 AND role IS DISTINCT FROM 'system')
)
SELECT a.id, a.message_ids::text,
       (SELECT json_agg(json_build_array(f.message_id, f.usable, f.role, f.occurrence) ORDER BY f.ord)
        FROM facts f WHERE f.agent_id = a.id),
       (SELECT m.id FROM messages m
        WHERE m.agent_id = a.id AND m.conversation_id IS NULL AND m.role = 'system'
        ORDER BY m.sequence_id DESC LIMIT 1) AS system_message
FROM agents a JOIN broken b ON b.agent_id = a.id
ORDER BY a.id
"""


def clean_message_ids(
    entries: list[tuple[str, bool, str | None, int]], system_message: str | None
) -> list[str]:
    """The repaired in-context list: usable entries once each (order kept), a system message first.

    ``entries`` are (message id, usable, role, occurrence) in list order. The first system message
    of the list moves to the front; if the list has none, the agent's latest system message
    (``system_message``) is put there.
    """
    kept = [
        (message_id, role) for message_id, usable, role, occurrence in entries if usable and occurrence == 1
    ]
    ids = [message_id for message_id, _ in kept]
    first_system = next((message_id for message_id, role in kept if role == "system"), None)
    if first_system is not None:
        ids.remove(first_system)
        return [first_system, *ids]
    if system_message is not None:
        return [system_message, *ids]
    return ids


def plan_message_ids(conn: Conn) -> tuple[list[Change], list[str]]:
    changes: list[Change] = []
    unrepairable: list[str] = []
    for agent_id, before_text, facts, system_message in conn.execute(_BROKEN_CONTEXTS_SQL).fetchall():
        entries = [(str(f[0]), bool(f[1]), f[2], int(f[3])) for f in facts or []]
        after = clean_message_ids(entries, system_message)
        if not after:
            unrepairable.append(
                f"agent {agent_id}: no usable in-context message and no system message to rebuild from"
            )
            continue
        roles = {message_id: role for message_id, usable, role, _ in entries if usable}
        if after[0] != system_message and roles.get(after[0]) != "system":
            unrepairable.append(f"agent {agent_id}: no system message exists to put first in message_ids")
        removed = [
            message_id for message_id, usable, _, occurrence in entries if not usable or occurrence > 1
        ]
        changes.append(
            Change(
                repair="message_ids.clean",
                table="agents",
                id=agent_id,
                before=before_text,
                after=after,
                note=_describe_cleaning(removed, entries, after),
            )
        )
    return changes, unrepairable


def _describe_cleaning(
    removed: list[str], entries: list[tuple[str, bool, str | None, int]], after: list[str]
) -> str:
    parts = []
    if removed:
        parts.append(
            f"dropped {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} ({', '.join(removed[:5])})"
        )
    if entries and after and entries[0][0] != after[0]:
        parts.append(f"system message {after[0]} put first")
    return "; ".join(parts) or "no change"


_GROUP_DRIFT_SQL = """
WITH listed AS (
  SELECT g.id AS group_id, e.value AS agent_id, e.ord
  FROM groups g, json_array_elements_text(g.agent_ids) WITH ORDINALITY e(value, ord)
  WHERE json_typeof(g.agent_ids) = 'array'
),
drifted AS (
  SELECT coalesce(l.group_id, j.group_id) AS group_id
  FROM listed l FULL JOIN groups_agents j ON j.group_id = l.group_id AND j.agent_id = l.agent_id
  WHERE l.group_id IS NULL OR j.group_id IS NULL
  UNION
  SELECT g.id FROM groups g WHERE g.agent_ids IS NOT NULL AND json_typeof(g.agent_ids) NOT IN ('array', 'null')
)
SELECT g.id, g.agent_ids::text,
       coalesce((SELECT json_agg(json_build_array(l.agent_id, EXISTS (SELECT 1 FROM agents a WHERE a.id = l.agent_id))
                                 ORDER BY l.ord) FROM listed l WHERE l.group_id = g.id), '[]'),
       coalesce((SELECT json_agg(j.agent_id ORDER BY j.agent_id) FROM groups_agents j WHERE j.group_id = g.id), '[]')
FROM groups g WHERE g.id IN (SELECT group_id FROM drifted) ORDER BY g.id
"""


def merge_group_members(listed: list[tuple[str, bool]], joined: list[str]) -> list[str]:
    """Members after the sync: existing listed agents (JSON order, once each), then junction-only ones."""
    members: list[str] = []
    for agent_id, exists in listed:
        if exists and agent_id not in members:
            members.append(agent_id)
    members.extend(agent_id for agent_id in joined if agent_id not in members)
    return members


def plan_group_members(conn: Conn) -> list[Change]:
    changes = []
    for group_id, before_text, listed, joined in conn.execute(_GROUP_DRIFT_SQL).fetchall():
        members = merge_group_members([(str(a), bool(e)) for a, e in listed], [str(a) for a in joined])
        missing_rows = [agent_id for agent_id in members if agent_id not in joined]
        changes.append(
            Change(
                repair="groups.sync_members",
                table="groups",
                id=group_id,
                before=before_text,
                after={"agent_ids": members, "add_groups_agents": missing_rows},
                note=f"{len(members)} member(s); {len(missing_rows)} groups_agents row(s) to add",
            )
        )
    return changes


def plan_sequence(conn: Conn) -> list[Change]:
    if conn.execute("SELECT to_regclass(%s)", (SEQUENCE,)).fetchone()[0] is None:  # type: ignore[index]
        return []
    highest = conn.execute("SELECT max(sequence_id) FROM messages").fetchone()[0]  # type: ignore[index]
    last_value, is_called = conn.execute(f"SELECT last_value, is_called FROM {SEQUENCE}").fetchone()  # type: ignore[misc]
    upcoming = int(last_value) + 1 if is_called else int(last_value)
    if highest is None or upcoming > highest:
        return []
    return [
        Change(
            repair="sequence.bump",
            table="messages",
            id=SEQUENCE,
            before={"next": upcoming},
            after={"next": int(highest) + 1},
            note=f"max(messages.sequence_id) is {highest}",
        )
    ]


# ------------------------------------------------------------------------------------------------
# applying


def apply_repairs(conn: Conn, plan: RepairPlan, options: RepairOptions) -> list[Change]:
    """Apply ``plan``'s database changes inside the caller's transaction; return those that happened."""
    columns = column_types(conn, _current_schema(conn))
    applied: list[Change] = []
    appliers: list[
        tuple[str, Callable[[Conn, list[Change], RepairOptions, dict[str, dict[str, str]]], set[str]]]
    ] = [
        ("runs.fail_stale", _apply_fail_runs),
        ("steps.fail_pending", _apply_fail_steps),
        ("message_ids.clean", _apply_message_ids),
        ("groups.sync_members", _apply_group_members),
        ("sequence.bump", _apply_sequence),  # last: setval is not transactional
    ]
    for repair, applier in appliers:
        changes = plan.of(repair)
        if changes:
            done = applier(conn, changes, options, columns)
            applied += [change for change in changes if change.id in done]
    return applied


def _note(options: RepairOptions, previous: str) -> sql.Composed:
    """A jsonb object recording that lifeboat made the change, when and why."""
    return sql.SQL(
        "jsonb_build_object('by', 'lifeboat reconcile', 'at', now(), 'reason', {reason}, 'previous_status', {previous})"
    ).format(reason=sql.Literal(options.reason), previous=sql.SQL(previous))


def _apply_fail_runs(
    conn: Conn, changes: list[Change], options: RepairOptions, columns: dict[str, dict[str, str]]
) -> set[str]:
    statement = sql.SQL(
        """
        UPDATE runs SET status = 'failed', stop_reason = 'error',
               completed_at = coalesce(completed_at, now() AT TIME ZONE 'UTC'), updated_at = now(),
               metadata_ = (CASE WHEN json_typeof(metadata_) = 'object' THEN metadata_::jsonb ELSE '{{}}'::jsonb END
                            || jsonb_build_object({key}, {note}))::json
        WHERE id = ANY (%s) AND status = ANY (%s)
        RETURNING id
        """
    ).format(key=sql.Literal(NOTE_KEY), note=_note(options, "status"))
    rows = conn.execute(statement, ([c.id for c in changes], list(ACTIVE_RUN_STATUSES))).fetchall()
    return {row[0] for row in rows}


def _apply_fail_steps(
    conn: Conn, changes: list[Change], options: RepairOptions, columns: dict[str, dict[str, str]]
) -> set[str]:
    step_columns = columns.get("steps", {})
    extra: sql.Composable = sql.SQL("")
    if "error_type" in step_columns and "error_data" in step_columns:
        extra = sql.SQL(
            ", error_type = coalesce(error_type, 'lifeboat_reconcile'), "
            "error_data = coalesce(error_data, jsonb_build_object({key}, {note})::json)"
        ).format(key=sql.Literal(NOTE_KEY), note=_note(options, "status::text"))
    statement = sql.SQL(
        "UPDATE steps SET status = 'FAILED', stop_reason = coalesce(stop_reason, 'error'), updated_at = now(){extra} "
        "WHERE id = ANY (%s) AND status::text = %s RETURNING id"
    ).format(extra=extra)
    rows = conn.execute(statement, ([c.id for c in changes], PENDING_STEP_STATUS)).fetchall()
    return {row[0] for row in rows}


def _apply_message_ids(
    conn: Conn, changes: list[Change], options: RepairOptions, columns: dict[str, dict[str, str]]
) -> set[str]:
    done = set()
    for change in changes:
        row = conn.execute(
            "UPDATE agents SET message_ids = %s::json, updated_at = now() "
            "WHERE id = %s AND message_ids::text = %s RETURNING id",
            (json.dumps(change.after), change.id, change.before),
        ).fetchone()
        if row is not None:
            done.add(change.id)
    return done


def _apply_group_members(
    conn: Conn, changes: list[Change], options: RepairOptions, columns: dict[str, dict[str, str]]
) -> set[str]:
    done = set()
    for change in changes:
        members = change.after["agent_ids"]
        row = conn.execute(
            "UPDATE groups SET agent_ids = %s::json, updated_at = now() "
            "WHERE id = %s AND agent_ids::text IS NOT DISTINCT FROM %s RETURNING id",
            (json.dumps(members), change.id, change.before),
        ).fetchone()
        if row is None:
            continue
        conn.execute(
            "INSERT INTO groups_agents (group_id, agent_id) "
            "SELECT %s, m FROM unnest(%s::text[]) AS m "
            "WHERE EXISTS (SELECT 1 FROM agents a WHERE a.id = m) "
            "AND NOT EXISTS (SELECT 1 FROM groups_agents j WHERE j.group_id = %s AND j.agent_id = m)",
            (change.id, members, change.id),
        )
        done.add(change.id)
    return done


def _apply_sequence(
    conn: Conn, changes: list[Change], options: RepairOptions, columns: dict[str, dict[str, str]]
) -> set[str]:
    # Re-read under the transaction: only ever move the sequence forward.
    row = conn.execute(
        f"SELECT setval('{SEQUENCE}', m) FROM (SELECT max(sequence_id) AS m FROM messages) x, {SEQUENCE} s "
        "WHERE x.m IS NOT NULL AND (CASE WHEN s.is_called THEN s.last_value + 1 ELSE s.last_value END) <= x.m"
    ).fetchone()
    return {SEQUENCE} if row is not None else set()
