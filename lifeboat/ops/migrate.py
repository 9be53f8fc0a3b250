"""``lifeboat migrate --to letta-code``: Letta V1 agents → Letta Code's local backend, losslessly.

1. **Select** agents from a snapshot's catalog or the live database's (ids, name glob, tag, all).
2. **Read** them in batches: each batch's subgraph (:mod:`lifeboat.letta.subgraph`) comes from the
   snapshot (only the blobs whose zone maps may hold it) or from one read-only transaction.
3. **Build** every agent completely in a staging directory inside the target (record,
   conversations with the whole history, memory repository with one commit).
4. **Check** the target: an agent already there and identical is left alone (so a second run
   changes nothing); one that differs is refused unless ``force``. Nothing is moved into place
   until every agent has been built and checked.
5. **Install** by renaming the built pieces into place, and report what went where.

``dry_run`` does steps 1-4 and reports the plan; the target is not touched (the staging
directory lives in a temporary directory then).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import LifeboatError, UnsafeRestore, UsageError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.letta.subgraph import TableRows, collect
from lifeboat.letta_code import LETTA_CODE_VERSION, writer
from lifeboat.letta_code.model import SourceAgent
from lifeboat.ops.agents import filter_agents
from lifeboat.ops.migrate_report import AgentMigration, MigrateReport, agent_migration
from lifeboat.ops.migrate_rows import source_agents
from lifeboat.ops.migrate_source import Origin

BATCH_SIZE = 25
#: Worker processes building agents from a snapshot (the work is per agent and CPU-bound).
WORKERS = min(2, os.cpu_count() or 1)
FAULT_ENV = "LIFEBOAT_MIGRATE_FAULT"  # tests: "build:N" fails after N agents built, "install:N" is SIGKILLed after N installed
DEFAULT_DIR_ENV = "LETTA_LOCAL_BACKEND_DIR"


def default_target() -> Path:
    """Where Letta Code looks by default: ``$LETTA_LOCAL_BACKEND_DIR`` or ``~/.letta/lc-local-backend``."""
    override = os.environ.get(DEFAULT_DIR_ENV)
    return Path(override) if override else Path.home() / ".letta" / "lc-local-backend"


def select(
    entries: list[AgentEntry], ids: list[str], name: str | None, tag: str | None, everything: bool
) -> list[AgentEntry]:
    """The agents asked for, in catalog order; refuses an empty or unknown selection."""
    if not (ids or name or tag or everything):
        raise UsageError("choose agents: --agent ID, --name GLOB, --tag T or --all")
    by_id = {entry.id: entry for entry in entries}
    unknown = [agent_id for agent_id in ids if agent_id not in by_id]
    if unknown:
        raise UsageError(f"agent {unknown[0]} is not in the source ({len(entries)} agents there)")
    wanted = set(ids)
    if everything:
        wanted |= set(by_id)
    if name is not None or tag is not None:
        wanted |= {entry.id for entry in filter_agents(entries, name, tag)}
    chosen = [entry for entry in entries if entry.id in wanted]
    if not chosen:
        raise UsageError("no agent matches the selection")
    return chosen


def migrate(
    origin: Origin,
    target: Path,
    chosen: list[AgentEntry],
    *,
    dry_run: bool = False,
    force: bool = False,
) -> MigrateReport:
    started = time.monotonic()
    report = MigrateReport(
        letta_code_version=LETTA_CODE_VERSION,
        source=origin.kind,
        source_label=origin.label,
        letta_revision=origin.revision,
        target=str(target),
        dry_run=dry_run,
        force=force,
    )
    names = {entry.id: entry.name for entry in origin.entries}
    block_users = origin.rows("blocks_agents", "agent_id", None)
    origin.forget()  # forked workers start with an empty cache
    with _staging(target, dry_run) as staging:
        built: list[AgentMigration] = []  # the report's entries (with each agent's paths)
        job = _Job(origin, target, staging, block_users, names)
        ids = [entry.id for entry in chosen]
        workers = WORKERS if origin.parallel else 1
        size = max(1, min(BATCH_SIZE, math.ceil(len(ids) / workers)))
        batches = list(_batches(ids, size))
        with _builder(job, workers if len(batches) > 1 else 1) as build:
            for results in build(batches):
                for result in results:
                    _fault("build", len(built))
                    built.append(result)
        report.agents = built
        different = [m for m in report.agents if m.state == "different"]
        if different and not force:
            report.refused = (
                f"{len(different)} agent(s) already exist in {target} with other content "
                f"(e.g. {different[0].name} {different[0].id}); use --force to replace them"
            )
        if not dry_run and report.refused is None:
            for n, migration in enumerate(built):
                _fault("install", n)
                if migration.state != "same":
                    writer.install(target, migration.paths, staging)
                migration.state = {"new": "written", "different": "replaced", "same": "unchanged"}[
                    migration.state
                ]
    report.seconds = round(time.monotonic() - started, 3)
    if report.refused and not dry_run:
        raise UnsafeRestore(report.refused)
    return report


@dataclass
class _Job:
    """What building a batch of agents needs (inherited by forked workers, never pickled)."""

    origin: Origin
    target: Path
    staging: Path
    block_users: TableRows | None
    names: dict[str, str]

    def build(self, batch: list[str]) -> list[AgentMigration]:
        graph = collect(self.origin.rows, batch)
        results = []
        for agent in source_agents(graph, batch, self.block_users, self.names):
            out = writer.build_agent(agent, self.staging)
            state = writer.existing_state(self.target, out, self.staging)
            results.append(agent_migration(agent, out, state))
        self.origin.forget()
        return results


_job: _Job | None = None  # the job of this process's pool worker


def _worker_start(job: _Job) -> None:
    global _job
    _job = job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles interruptions
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and ends its workers with SIGTERM


def _worker_build(batch: list[str]) -> list[AgentMigration]:
    assert _job is not None
    try:
        return _job.build(batch)
    except Exception as exc:
        raise _picklable(exc) from None


def _picklable(exc: Exception) -> Exception:
    """``exc``, or an error with its message and exit code when it cannot cross to the parent
    (an exception whose ``__init__`` takes other arguments than its message cannot be unpickled)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        copy = LifeboatError(str(exc))
        copy.exit_code = getattr(exc, "exit_code", LifeboatError.exit_code)
        return copy


@contextlib.contextmanager
def _builder(
    job: _Job, workers: int
) -> Iterator[Callable[[list[list[str]]], Iterator[list[AgentMigration]]]]:
    """Builds batches in order: here, or in ``workers`` forked processes (results in batch order).

    Workers are forked (they inherit the opened snapshot and its keys) and write into the same
    staging directory; leaving the block ends them (SIGTERM) before the staging area is removed.
    """
    if workers <= 1:
        yield lambda batches: (job.build(batch) for batch in batches)
        return
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_worker_start, initargs=(job,))
    try:
        yield lambda batches: pool.imap(_worker_build, batches)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _fault(phase: str, done: int) -> None:
    """Fault injection for the tests (``FAULT_ENV``); does nothing unless that variable is set."""
    spec = os.environ.get(FAULT_ENV, "")
    if spec != f"{phase}:{done}":
        return
    if phase == "install":
        os.kill(os.getpid(), signal.SIGKILL)
    raise LifeboatError(f"injected fault after {done} agent(s) ({phase})")


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextlib.contextmanager
def _staging(target: Path, dry_run: bool) -> Iterator[Path]:
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="lifeboat-migrate-") as tmp:
            yield Path(tmp)
        return
    with writer.staging_area(target) as staging:
        yield staging


__all__ = ["SourceAgent", "default_target", "migrate", "select"]
