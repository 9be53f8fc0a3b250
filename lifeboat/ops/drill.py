"""``lifeboat drill``: prove a snapshot restores, and measure how long it takes (the RTO).

Phases, each timed:

* ``sandbox``: start a throwaway PostgreSQL + pgvector (the embedded one; skipped with --target);
* ``fetch``: read and verify every blob the snapshot needs from the repository;
* ``schema``, ``data``, ``indexes``, ``analyze``: the full restore (``run_restore``);
* ``verify``: lifeboat's Letta checks on the restored database (error findings fail the drill);
* ``compare`` (default; ``compare=False`` skips it; right after the restore, before any upgrade
  rehearsal): ``verify --against`` the drilled snapshot, row by row — the restored database must
  equal the snapshot (a difference fails the drill);
* ``smoke`` (optional): the real Letta 0.16.8 server on the restored database, through its
  API: list agents, read one agent's memory and messages, send it one message (fake LLM).

RTO = fetch + schema + data + indexes + analyze: from "start restoring" to "database ready".
With the smoke step, ``service_rto_seconds`` adds the server's start-up. Every drill, passed or
failed, is recorded in the repository (``drills/`` documents) so reports can chart the history.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifeboat.errors import LifeboatError, SandboxError, UnsafeRestore, VerificationFailed
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.drill_report import DrillReport, Phase, SmokeReport
from lifeboat.redact import redact
from lifeboat.repo.documents import list_documents, new_document_id, put_document
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository

# "switch": the rest of the restore around its parts (manifest and trust checks, CREATE DATABASE,
# the rename into place); "teardown": dropping the database or stopping the sandbox. With them
# every second of a drill belongs to a phase: the phases add up to the drill's total.
RESTORE_PHASES = ("fetch", "schema", "data", "indexes", "analyze", "switch")
ALL_PHASES = (
    "sandbox",  # or "target": checking that a --target database does not exist yet
    *RESTORE_PHASES,
    "compare",
    "safety_point",
    "upgrade",
    "verify",
    "smoke",
    "teardown",
)
HISTORY_LIMIT = 60
SMOKE_MESSAGE = "lifeboat drill: are you there?"

Progress = Callable[[int], None]
PhaseListener = Callable[[str], None]


class DrillFailed(LifeboatError):
    """A drill phase failed; the exit code is the failing error's (13 damaged repository, 3 verify...)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class DrillOptions:
    snapshot: str = "latest"
    target_dsn: str | None = None  # admin DSN naming a database to create; None = embedded sandbox
    smoke: bool = False
    jobs: int = 2
    report_dir: Path | None = None
    record: bool = True
    flavor: str | None = None
    trust_schema: bool = False  # see restore.check_trust
    trust_unencrypted: bool = False
    compare: bool = True
    upgrade_to: str | None = None  # a Letta release: rehearse the upgrade (ops/drill_upgrade.py)
    encryption_key: str | None = field(default=None, repr=False)


class _Recorder:
    """Times phases into the report; the first failure stops the drill with its reason."""

    def __init__(self, report: DrillReport, listener: PhaseListener | None) -> None:
        self.report = report
        self.listener = listener

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        started = time.monotonic()  # before the listener: what it does (printing) is this phase's time too
        if self.listener:
            self.listener(name)
        entry = Phase(name=name, seconds=0.0, ok=True)
        try:
            yield entry
        except BaseException as exc:
            entry.ok = False
            entry.detail = str(exc) or type(exc).__name__
            self.report.failed_phase = name
            self.report.reason = entry.detail
            self.report.exit_code = _exit_code(exc)
            raise
        finally:
            entry.seconds = round(time.monotonic() - started, 3)
            self.report.phases.append(entry)

    def add(self, name: str, seconds: float) -> None:
        self.report.phases.append(Phase(name=name, seconds=round(seconds, 3), ok=True))


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, LifeboatError):
        return exc.exit_code
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


def run_drill(
    repo: Repository,
    options: DrillOptions,
    *,
    progress: Progress | None = None,
    on_phase: PhaseListener | None = None,
) -> DrillReport:
    """Run one drill; returns its report (``ok`` False on failure; the caller decides how to exit)."""
    snapshot = repo.load_snapshot(options.snapshot)
    report = _new_report(repo, snapshot, options)
    recorder = _Recorder(report, on_phase)
    started = time.monotonic()
    with contextlib.suppress(_Stop):
        try:
            _drill(repo, snapshot, options, recorder, progress)
            report.ok = True
        except Exception as exc:  # any failure is the drill's verdict, recorded with its reason
            if report.failed_phase is None:  # failed outside any phase (target checks, cleanup)
                report.failed_phase, report.reason = "setup", str(exc)
                report.exit_code = _exit_code(exc)
            raise _Stop from exc
    report.finished_at = datetime.now(UTC)
    report.seconds = round(time.monotonic() - started, 3)
    _finish_rto(report)
    _publish(repo, report, options)
    return report


class _Stop(Exception):
    """Internal: a phase failed and the report says why."""


def _new_report(repo: Repository, snapshot: Snapshot, options: DrillOptions) -> DrillReport:
    source = layout.source_document(snapshot)
    return DrillReport(
        id=new_document_id(),
        repository=repo.backend.url,
        snapshot=snapshot.id,
        snapshot_time=snapshot.time,
        snapshot_tags=snapshot.tags,
        letta_release=source.letta_release,
        target="embedded PostgreSQL sandbox" if options.target_dsn is None else _describe(options.target_dsn),
        started_at=datetime.now(UTC),
        tables=len(snapshot.streams),
        rows=sum(stream.records for stream in snapshot.streams),
        raw_bytes=snapshot.raw_size(),
    )


def _describe(dsn: str) -> str:
    from lifeboat.pg.connect import describe_target

    return describe_target(dsn)


def _drill(
    repo: Repository,
    snapshot: Snapshot,
    options: DrillOptions,
    recorder: _Recorder,
    progress: Progress | None,
) -> None:
    with _target(snapshot, options, recorder) as (admin_dsn, app_dsn):
        _restore(repo, snapshot, admin_dsn, options, recorder, progress)
        if options.compare:  # the restore itself is exact (before any upgrade rehearsal changes it)
            with recorder.phase("compare"):
                _compare(repo, snapshot, recorder.report, admin_dsn, options.jobs)
        if options.upgrade_to is not None:
            _rehearse_upgrade(snapshot, admin_dsn, options, recorder)
        with recorder.phase("verify"):
            _verify(recorder.report, admin_dsn)
        if options.smoke or options.upgrade_to is not None:
            with recorder.phase("smoke"):
                recorder.report.smoke = smoke_test(app_dsn, snapshot, options.upgrade_to)


def _rehearse_upgrade(snapshot: Snapshot, admin_dsn: str, options: DrillOptions, recorder: _Recorder) -> None:
    from lifeboat.ops import drill_upgrade
    from lifeboat.ops.upgrade import snapshot_rows

    assert options.upgrade_to is not None
    revision = layout.source_document(snapshot).letta_revision
    with recorder.phase("safety_point"):
        copy = drill_upgrade.safety_point(admin_dsn)
    try:
        with recorder.phase("upgrade"):
            recorder.report.upgrade = drill_upgrade.run_upgrade(
                admin_dsn, revision, options.upgrade_to, options.encryption_key, snapshot_rows(snapshot)
            )
    finally:
        drill_upgrade.drop_safety_point(admin_dsn, copy)


@contextlib.contextmanager
def _target(snapshot: Snapshot, options: DrillOptions, recorder: _Recorder) -> Iterator[tuple[str, str]]:
    """(admin DSN of the database to create, DSN the Letta server would use); removed afterwards.

    Imports happen inside the phases: importing ``lifeboat.pg`` loads psycopg (0.1–0.3 s), which
    outside a phase is time the report cannot attribute."""
    database = layout.source_document(snapshot).database or "letta"
    if options.target_dsn is not None:
        with recorder.phase("target"):
            _refuse_existing(options.target_dsn)  # never drop a database the drill did not create
        try:
            yield options.target_dsn, options.target_dsn
        finally:
            with recorder.phase("teardown"):
                _drop_database(options.target_dsn)
        return
    cluster = None
    try:
        with recorder.phase("sandbox"):  # the imports too: they take a noticeable part of a second
            from lifeboat.pg import with_database
            from lifeboat.sandbox.letta_schema import LETTA_PASSWORD, LETTA_ROLE, ensure_letta_role
            from lifeboat.sandbox.postgres import start_cluster

            cluster = start_cluster(options.flavor)
            ensure_letta_role(cluster)  # keep init.sql's owner: the server connects as role letta
        yield with_database(cluster.dsn(), database), cluster.dsn(database, LETTA_ROLE, LETTA_PASSWORD)
    finally:
        if cluster is not None:
            with recorder.phase("teardown"):
                cluster.stop()


def _refuse_existing(dsn: str) -> None:
    import psycopg

    from lifeboat import pg

    name = str(psycopg.conninfo.conninfo_to_dict(dsn).get("dbname") or "")
    if not name:
        raise UnsafeRestore("the drill --target DSN names no database")
    with pg.connect(pg.with_database(dsn, "postgres")) as admin:
        if pg.database_exists(admin, name):
            raise UnsafeRestore(
                f"database {name} already exists: a drill restores into a NEW database and drops it "
                "afterwards; name one that does not exist"
            )


def _drop_database(dsn: str) -> None:
    import psycopg

    from lifeboat import pg

    name = psycopg.conninfo.conninfo_to_dict(dsn).get("dbname")
    if name:
        with pg.connect(pg.with_database(dsn, "postgres")) as admin:
            pg.drop_database(admin, str(name))


def _restore(
    repo: Repository,
    snapshot: Snapshot,
    admin_dsn: str,
    options: DrillOptions,
    recorder: _Recorder,
    progress: Progress | None,
) -> None:
    with recorder.phase("fetch"), repo.lock():  # the imports too: the restore code loads the SQL parser
        from lifeboat.ops.restore import Trust, preflight, run_restore

        preflight(repo, snapshot, read_data=True)
    with recorder.phase("restore") as restore_phase:
        result = run_restore(
            repo,
            snapshot.id,
            admin_dsn,
            jobs=options.jobs,
            progress=progress,
            safety_snapshot=False,
            verify_first=False,
            trust=Trust(schema=options.trust_schema, unencrypted=options.trust_unencrypted),
        )
    recorder.report.phases.remove(restore_phase)  # replaced by its parts, which add up to it
    parts = ("schema", "data", "indexes", "analyze")
    for name in parts:
        recorder.add(name, result.timings.get(name, 0.0))
    rest = restore_phase.seconds - sum(round(result.timings.get(name, 0.0), 3) for name in parts)
    recorder.add("switch", max(0.0, rest))


def _verify(report: DrillReport, dsn: str) -> None:
    from lifeboat.ops.verify import verify_database

    verified = verify_database(dsn)
    report.verify_summary = dict(verified.summary)
    report.verify_errors = [f"{f.check}: {f.message}" for f in verified.errors()][:20]
    if not verified.ok:
        raise VerificationFailed(
            f"{verified.summary['error']} error-level finding(s) on the restored database; first: "
            f"{report.verify_errors[0]}"
        )


def _compare(repo: Repository, snapshot: Snapshot, report: DrillReport, dsn: str, jobs: int) -> None:
    from lifeboat.ops.verify_against import AgainstOptions, verify_against

    compared = verify_against(repo, dsn, AgainstOptions(snapshot=snapshot.id, jobs=jobs))
    report.equal = compared.equal
    report.compare_summary = dict(compared.summary)
    report.compare_differences = [
        f"{t.table}: {t.missing} missing, {t.extra} extra, {t.changed} changed"
        + (f" ({', '.join(t.changed_columns)})" if t.changed_columns else "")
        + (f" — {t.note}" if t.note else "")
        for t in compared.tables
        if t.missing or t.extra or t.changed
    ][:20]
    report.compare_differences += [
        f"sequence {s.sequence}: snapshot {s.snapshot}, database {s.database}" for s in compared.sequences
    ]
    if not compared.equal:
        raise VerificationFailed(
            f"the restored database differs from snapshot {snapshot.short_id}: "
            f"{compared.summary['missing']} missing, {compared.summary['extra']} extra, "
            f"{compared.summary['changed']} changed row(s); first: {report.compare_differences[0]}"
        )


def smoke_test(dsn: str, snapshot: Snapshot, version: str | None = None) -> SmokeReport:
    """Start the real Letta server (0.16.8, or release ``version``) on ``dsn``; use it as a client would."""
    from lifeboat.sandbox.letta_env import ensure_letta_env
    from lifeboat.sandbox.letta_server import LettaServer

    smoke = SmokeReport(agents_in_snapshot=len(layout.letta_document(snapshot).agents or []))
    started = time.monotonic()
    env = ensure_letta_env(version) if version else None
    with LettaServer(dsn, env=env) as server:
        smoke.server_start_seconds = round(time.monotonic() - started, 3)

        def step(name: str, call: Callable[[], Any]) -> Any:
            began = time.monotonic()
            try:
                return call()
            finally:
                smoke.steps[name] = round(time.monotonic() - began, 3)

        agents = step("list_agents", lambda: server.get("/v1/agents/", limit=1000))
        smoke.agents_listed = len(agents)
        if not agents:
            raise SandboxError("the restored server lists no agents")
        agent = _pick_agent(agents, snapshot)
        smoke.agent_id, smoke.agent_name = agent["id"], agent.get("name")
        blocks = step("read_memory", lambda: server.get(f"/v1/agents/{agent['id']}/core-memory/blocks"))
        messages = step("read_messages", lambda: server.get(f"/v1/agents/{agent['id']}/messages", limit=100))
        smoke.memory_blocks, smoke.messages = len(blocks), len(messages)
        reply = step(
            "send_message",
            lambda: server.post(
                f"/v1/agents/{agent['id']}/messages",
                {"messages": [{"role": "user", "content": SMOKE_MESSAGE}]},
            ),
        )
        smoke.reply_messages = len((reply or {}).get("messages", []))
        if not smoke.reply_messages:
            raise SandboxError(f"agent {agent['id']} gave no reply to the smoke message")
    return smoke


def _pick_agent(agents: list[dict[str, Any]], snapshot: Snapshot) -> dict[str, Any]:
    """The agent with the most messages in the snapshot's catalog (not a sleeptime helper)."""
    catalog = {entry.id: entry for entry in layout.letta_document(snapshot).agents or []}

    def weight(agent: dict[str, Any]) -> tuple[int, int, str]:
        entry = catalog.get(agent["id"])
        messages = entry.messages if entry is not None else 0
        helper = 1 if "sleeptime" in str(agent.get("agent_type", "")) else 0
        return (-helper, messages, str(agent.get("name", "")))

    return max(agents, key=weight)


def _finish_rto(report: DrillReport) -> None:
    seconds = report.phase_seconds()
    if report.ok or all(name in seconds for name in RESTORE_PHASES):
        report.rto_seconds = round(sum(seconds.get(name, 0.0) for name in RESTORE_PHASES), 3)
        if report.smoke is not None:
            report.service_rto_seconds = round(report.rto_seconds + report.smoke.server_start_seconds, 3)


def _publish(repo: Repository, report: DrillReport, options: DrillOptions) -> None:
    """Record the drill in the repository, then write the JSON and HTML reports."""
    if options.record:
        put_document(repo, "drills", report.model_dump(mode="json"), report.id)
    if options.report_dir is None:
        return
    from lifeboat.ops.report_html import render_drill_html

    options.report_dir.mkdir(parents=True, exist_ok=True)
    json_path = options.report_dir / f"drill-{report.id}.json"
    html_path = options.report_dir / f"drill-{report.id}.html"
    report.files = {"json": str(json_path), "html": str(html_path)}
    json_path.write_text(redact(report.model_dump_json(indent=2)) + "\n")
    html_path.write_text(redact(render_drill_html(report, drill_history(repo, current=report))))


def drill_history(repo: Repository, *, current: DrillReport | None = None) -> list[DrillReport]:
    """Recorded drills, oldest first (the newest ``HISTORY_LIMIT``), plus ``current`` if not recorded."""
    history = []
    for _doc_id, document in list_documents(repo, "drills", limit=HISTORY_LIMIT):
        with contextlib.suppress(ValueError):
            history.append(DrillReport.model_validate(document))
    if current is not None and all(item.id != current.id for item in history):
        history.append(current)
    return history


def failure(report: DrillReport) -> DrillFailed:
    """The error the CLI raises for a failed drill (its exit code is the failing error's)."""
    return DrillFailed(f"drill failed in phase {report.failed_phase}: {report.reason}", report.exit_code or 1)
