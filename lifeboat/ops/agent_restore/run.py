"""The agent-restore operation: read the subgraph from the snapshot, then in ONE transaction gather
the live facts, decide, stage and apply (or, for a dry run, count and roll back), holding Letta's
per-agent Redis locks in place; afterwards drop the agents' stale Redis keys."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import psycopg

from lifeboat import pg
from lifeboat.errors import SnapshotNotFound, UnsafeRestore, UsageError
from lifeboat.letta import redis_keys
from lifeboat.letta.locks import AgentLocks
from lifeboat.letta.subgraph import Subgraph, collect
from lifeboat.ops.agent_restore.apply import Applier
from lifeboat.ops.agent_restore.facts import LiveFacts, LiveSchema, gather, live_schema
from lifeboat.ops.agent_restore.plan import Decisions, decide, rows_to_write
from lifeboat.ops.agent_restore.report import (
    AgentPlanEntry,
    AgentRestoreReport,
    Mode,
    Options,
    ReadStats,
    SharedPolicy,
)
from lifeboat.ops.agent_restore.source import (
    SnapshotSource,
    choose_agents,
    run_warnings,
    snapshot_revision,
)
from lifeboat.repo.config import snapshot_name
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository
from lifeboat.settings import RedisTarget


def run_agent_restore(
    repo: Repository,
    dsn: str,
    *,
    snapshot_ref: str | Snapshot = "latest",
    agent_ids: Iterable[str] = (),
    name: str | None = None,
    tag: str | None = None,
    options: Options | None = None,
    redis: RedisTarget | None = None,
) -> AgentRestoreReport:
    """Restore the selected agents from ``snapshot_ref`` into the live database at ``dsn``.

    ``snapshot_ref`` may be a snapshot the caller already read (the CLI reads it to choose it):
    a manifest is parsed once, not once per layer (a 20,000-agent manifest is ~50 MB parsed, and
    three copies were alive during the apply). It is checked to be still in the repository once
    the lock is held, as a snapshot loaded under the lock would be."""
    options = options or Options()
    _check_options(options)
    started = time.monotonic()
    timings: dict[str, float] = {}
    with repo.lock():
        snapshot = _snapshot(repo, snapshot_ref)
        chosen = choose_agents(snapshot, agent_ids, name, tag)
        source = SnapshotSource(repo, snapshot)
        graph = collect(source, [entry.id for entry in chosen])
    timings["read"] = time.monotonic() - started
    with pg.connection(dsn, autocommit=True) as conn:
        report = _apply(conn, graph, snapshot, options, redis, timings)
    report.read = source.stats
    report.database = pg.describe_target(dsn)
    report.seconds = time.monotonic() - started
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    return report


def _snapshot(repo: Repository, ref: str | Snapshot) -> Snapshot:
    """The snapshot ``ref`` names, or ``ref`` itself if its manifest is still stored (a prune may
    have forgotten it between the caller's read and the lock)."""
    if isinstance(ref, str):
        return repo.load_snapshot(ref)
    if not repo.backend.exists(snapshot_name(ref.id)):
        raise SnapshotNotFound(f"snapshot {ref.short_id} was removed from the repository meanwhile")
    return ref


def _check_options(options: Options) -> None:
    if options.mode is Mode.IN_PLACE and options.shared is SharedPolicy.COPY:
        raise UsageError("--shared=copy only applies to --mode copy")
    if options.mode is Mode.IN_PLACE and options.org:
        raise UsageError("--org only applies to --mode copy (in place keeps each agent's organization)")


def _locks(graph: Subgraph, options: Options, redis: RedisTarget | None) -> AgentLocks:
    """Letta's locks on the agents and their conversations (taken in place, for real runs only)."""
    keys = [redis_keys.agent_lock_key(a) for a in sorted(graph.agent_ids)]
    keys += [redis_keys.agent_lock_key(c) for c in sorted(graph.ids("conversations"))]
    if redis is None or options.mode is not Mode.IN_PLACE or options.dry_run:
        return AgentLocks(None, keys, options.force)
    from lifeboat.ops.redis import client

    return AgentLocks(client(redis), keys, options.force, where=f"{redis.host}:{redis.port}")


def _apply(
    conn: psycopg.Connection[Any],
    graph: Subgraph,
    snapshot: Snapshot,
    options: Options,
    redis: RedisTarget | None,
    timings: dict[str, float],
) -> AgentRestoreReport:
    live = live_schema(conn)
    revision = snapshot_revision(snapshot)
    warnings = []
    if revision and live.revision and revision != live.revision:
        warnings.append(
            f"snapshot is Letta revision {revision}, the live database {live.revision}: columns restored by name"
        )
    with _locks(graph, options, redis) as locks:
        phase = time.monotonic()
        with conn.transaction() as transaction:
            report = _in_transaction(conn, live, graph, snapshot, options, locks)
            report.warnings[:0] = warnings
            if options.dry_run:
                raise psycopg.Rollback(transaction)
        timings["apply"] = time.monotonic() - phase
        if not options.dry_run and options.mode is Mode.IN_PLACE:
            removed = locks.invalidate(graph.agent_ids, graph.ids("runs"))
            report.redis = f"{locks.note}; {removed} stale key(s) removed" if locks.client else locks.note
        else:
            report.redis = locks.note or "no Redis changes"
    return report


def _in_transaction(
    conn: psycopg.Connection[Any],
    live: LiveSchema,
    graph: Subgraph,
    snapshot: Snapshot,
    options: Options,
    locks: AgentLocks,
) -> AgentRestoreReport:
    in_place = options.mode is Mode.IN_PLACE
    facts = gather(conn, live, graph, options, lock=in_place and not options.dry_run, runs=in_place)
    refused = facts.busy()
    if refused and not options.force and not options.dry_run:
        raise UnsafeRestore(refused + "; wait for it, cancel it, or pass --force")
    decisions = decide(graph, facts, options)
    applier = Applier(conn, live, graph, decisions, options, keepalive=locks.extend)
    applier.stage(rows_to_write(graph, decisions, options))
    order = applier.order()
    if options.dry_run:
        applier.count_removals()
    else:
        applier.delete(order)
        applier.insert(order)
    return AgentRestoreReport(
        snapshot=snapshot.id,
        mode=options.mode,
        shared_policy=options.shared,
        dry_run=options.dry_run,
        database="",
        agents=_agent_entries(graph, facts, decisions, options),
        tables=[applier.tables[t] for t in order],
        entities=sorted(decisions.all(), key=lambda d: (d.kind, d.label, d.id)),
        read=ReadStats(),
        warnings=run_warnings(snapshot, graph) + applier.warnings,
        refused=refused if options.dry_run else None,
    )


def _agent_entries(
    graph: Subgraph, facts: LiveFacts, decisions: Decisions, options: Options
) -> list[AgentPlanEntry]:
    names = graph.agent_names()
    return [
        AgentPlanEntry(
            id=a,
            name=names.get(a, ""),
            new_id=decisions.agent_ids.get(a) if options.mode is Mode.COPY else None,
            live=a in facts.present,
            requested=a in graph.requested,
        )
        for a in sorted(graph.agent_ids)
    ]
