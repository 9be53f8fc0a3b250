"""Redis repairs for ``lifeboat reconcile`` (docs/LETTA.md §8): keys left by requests that died.

A run is *dead* when it no longer exists, when it is a crash leftover (failed by this reconcile,
or by an earlier one: its metadata carries the ``lifeboat_reconcile`` note), or when it ended
in background mode without the completion marker in its stream. Which keys are stale, and why
deleting them is safe:

* ``conversation:lock:<conversation or agent id>`` — held while a request runs (TTL 300 s); while it
  exists every new message to that conversation gets 409 "busy". Stale when no run of that
  conversation/agent is still active after the database repairs, and either the server is known
  to be stopped or the lock is older than :data:`LOCK_GRACE_SECONDS` (a live request takes the
  lock a moment before it inserts its run).
* ``agent:send_message:run_id:<agent id>`` — the agent's latest run, read by cancel-without-run-id
  (no TTL); ``otid:run:<otid>`` — duplicate-request recovery (a retry with the same otid is
  answered by replaying the run's stream). Stale when their run is dead. Keys of runs that ended
  normally are kept: every finished request leaves them, Letta uses them (a retried request is
  replayed, not run twice) and they are harmless; deleting them would make reconcile churn on
  every live server.
* ``sse:run:<run id>`` — background-mode stream chunks; a replay of a stream without completion
  marker waits forever. Removed when the run is dead; complete streams stay replayable until
  their TTL.

A run the database plan fails counts as failed already, so a dry run predicts the apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from lifeboat.letta.repairs import NOTE_KEY, Change, RepairOptions, RepairPlan
from lifeboat.letta.runs import ACTIVE_RUN_STATUSES

LOCK_PREFIX = "conversation:lock:"
RUN_POINTER_PREFIX = "agent:send_message:run_id:"
OTID_PREFIX = "otid:run:"
STREAM_PREFIX = "sse:run:"
LOCK_TTL_SECONDS = 300
LOCK_GRACE_SECONDS = 30

# Delete a string key only if it still holds the value we judged stale.
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class RunFacts:
    """What the plan knows about the runs Redis mentions."""

    status: dict[str, str]  # run id -> effective status (after the planned DB repairs)
    leftovers: set[str]  # runs failed as crash leftovers (by this plan or an earlier reconcile)
    background: set[str]  # runs started in background (streaming into Redis) mode
    active_keys: set[str]  # conversation and agent ids with an effectively active run
    complete_streams: set[str]  # run ids whose sse stream ends with a completion marker

    def is_dead(self, run_id: str) -> bool:
        status = self.status.get(run_id)
        if status is None or run_id in self.leftovers:
            return True
        ended = status not in ACTIVE_RUN_STATUSES
        return ended and run_id in self.background and run_id not in self.complete_streams

    def stream_is_stale(self, run_id: str) -> bool:
        """A stream whose run is dead, or ended without its completion marker (a replay would hang)."""
        ended = self.status.get(run_id) not in ACTIVE_RUN_STATUSES
        return self.is_dead(run_id) or (ended and run_id not in self.complete_streams)


def _scan(client: Any, prefix: str) -> list[str]:
    return sorted(client.scan_iter(match=prefix + "*", count=1000))


def _get_many(client: Any, keys: list[str]) -> dict[str, str | None]:
    if not keys:
        return {}
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return dict(zip(keys, pipe.execute(), strict=True))


def _complete_streams(client: Any, run_ids: list[str]) -> set[str]:
    if not run_ids:
        return set()
    pipe = client.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.xrevrange(STREAM_PREFIX + run_id, count=1)
    complete = set()
    for run_id, last in zip(run_ids, pipe.execute(), strict=True):
        if last and last[0][1].get("complete") == "true":
            complete.add(run_id)
    return complete


_RUNS_SQL = """
SELECT id, status, coalesce(background, false),
       json_typeof(metadata_) = 'object' AND (metadata_::jsonb) ? %s
FROM runs WHERE id = ANY (%s)
"""


def _run_facts(
    conn: psycopg.Connection[Any], client: Any, run_ids: Iterable[str], lock_ids: list[str], plan: RepairPlan
) -> RunFacts:
    failing = {change.id for change in plan.of("runs.fail_stale")}
    wanted = sorted(set(run_ids))
    status: dict[str, str] = {}
    leftovers, background = set(failing), set()
    for run_id, run_status, in_background, reconciled in conn.execute(_RUNS_SQL, (NOTE_KEY, wanted)):
        status[run_id] = "failed" if run_id in failing else run_status
        if reconciled:
            leftovers.add(run_id)
        if in_background:
            background.add(run_id)
    active_keys: set[str] = set()
    for run_id, agent_id, conversation_id in conn.execute(
        "SELECT id, agent_id, conversation_id FROM runs WHERE status = ANY (%s) "
        "AND (agent_id = ANY (%s) OR conversation_id = ANY (%s))",
        (list(ACTIVE_RUN_STATUSES), lock_ids, lock_ids),
    ):
        if run_id not in failing:
            active_keys.update(key for key in (agent_id, conversation_id) if key)
    return RunFacts(status, leftovers, background, active_keys, _complete_streams(client, wanted))


def plan_redis_repairs(
    client: Any, conn: psycopg.Connection[Any], plan: RepairPlan, options: RepairOptions
) -> list[Change]:
    """Stale Letta keys in Redis (``client`` must decode responses to str)."""
    locks = _scan(client, LOCK_PREFIX)
    pointers = _get_many(client, _scan(client, RUN_POINTER_PREFIX))
    otids = _get_many(client, _scan(client, OTID_PREFIX))
    streams = [key for key in _scan(client, STREAM_PREFIX) if client.type(key) == "stream"]
    stream_runs = [key[len(STREAM_PREFIX) :] for key in streams]
    lock_ids = [key[len(LOCK_PREFIX) :] for key in locks]
    mentioned = [v for v in (*pointers.values(), *otids.values()) if v] + stream_runs
    facts = _run_facts(conn, client, mentioned, lock_ids, plan)

    changes = _stale_locks(client, locks, facts, options)
    for key, run_id in pointers.items():
        if not run_id or facts.is_dead(run_id):
            changes.append(_change("redis.run_pointer", RUN_POINTER_PREFIX, key, run_id, _why(run_id, facts)))
    for key, run_id in otids.items():
        if not run_id or facts.is_dead(run_id):
            changes.append(_change("redis.otid_mapping", OTID_PREFIX, key, run_id, _why(run_id, facts)))
    for key, run_id in zip(streams, stream_runs, strict=True):
        if facts.stream_is_stale(run_id):
            changes.append(_change("redis.sse_stream", STREAM_PREFIX, key, None, _why(run_id, facts)))
    return changes


def _stale_locks(client: Any, locks: list[str], facts: RunFacts, options: RepairOptions) -> list[Change]:
    if not locks:
        return []
    pipe = client.pipeline(transaction=False)
    for key in locks:
        pipe.get(key)
        pipe.pttl(key)
    replies = pipe.execute()
    changes = []
    for index, key in enumerate(locks):
        token, pttl = replies[2 * index], replies[2 * index + 1]
        holder = key[len(LOCK_PREFIX) :]
        age = LOCK_TTL_SECONDS - pttl / 1000 if pttl is not None and pttl >= 0 else float("inf")
        if holder in facts.active_keys or token is None:
            continue
        if options.server_stopped or age >= LOCK_GRACE_SECONDS:
            note = f"no active run for {holder}; lock held {age:.0f} s" if age != float("inf") else "no TTL"
            changes.append(_change("redis.conversation_lock", LOCK_PREFIX, key, token, note))
    return changes


def _why(run_id: str | None, facts: RunFacts) -> str:
    if not run_id or run_id not in facts.status:
        return f"run {run_id or '(none)'} does not exist"
    if run_id in facts.leftovers:
        return f"run {run_id} is a crash leftover (failed by lifeboat reconcile)"
    suffix = "" if run_id in facts.complete_streams else " and its stream never completed"
    return f"run {run_id} is {facts.status[run_id]}{suffix}"


def _change(repair: str, prefix: str, key: str, value: str | None, note: str) -> Change:
    return Change(
        repair=repair, target="redis", table=prefix + "*", id=key, before=value, after=None, note=note
    )


def apply_redis_repairs(client: Any, changes: list[Change]) -> list[Change]:
    """Delete the planned keys; string keys only if their value is unchanged. Returns the deleted ones."""
    compare_and_delete = client.register_script(_COMPARE_AND_DELETE)
    applied = []
    for change in changes:
        if change.before is None:
            deleted = client.delete(change.id)
        else:
            deleted = compare_and_delete(keys=[change.id], args=[change.before])
        if deleted:
            applied.append(change)
    return applied
