"""verify (Letta-aware consistency checks) and reconcile (crash repair)."""

from __future__ import annotations

from typing import Annotated

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    DbOption,
    HostFilterOption,
    PasswordFileOption,
    RepoOption,
    SourceFilterOption,
    TagFilterOption,
    database_dsn,
    open_repo,
    snapshot_filter,
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout (see docs/VERIFY.md).")
]

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


@app.command()
def verify(
    db: DbOption = None,
    encryption_key: Annotated[
        str | None,
        typer.Option(
            "--encryption-key",
            envvar="LETTA_ENCRYPTION_KEY",
            help="Letta's LETTA_ENCRYPTION_KEY, to prove the _enc secret columns decrypt (skipped without).",
            show_envvar=True,
        ),
    ] = None,
    check: Annotated[
        list[str] | None,
        typer.Option("--check", "-c", help="Run only this check (repeatable); see docs/VERIFY.md."),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Compare the database row by row with this snapshot (id, prefix or 'latest') instead.",
        ),
    ] = None,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="With --against: compare only this agent's subgraph (repeatable)."),
    ] = None,
    since_snapshot: Annotated[
        bool,
        typer.Option(
            "--since-snapshot",
            help="With --against: rows written after the snapshot are traffic, only the others fail.",
        ),
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="With --against: parallel connections.")] = 2,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
) -> None:
    """Check a Letta database (live or restored) for corruption, drift and crash leftovers.

    Exit 0 when no error-level finding (warnings and info allowed), 3 otherwise. With --against,
    exit 0 when the database equals the snapshot (or only differs by later writes, with
    --since-snapshot), 3 otherwise.
    """
    from lifeboat.errors import UsageError, VerificationFailed
    from lifeboat.letta.checks import REGISTRY
    from lifeboat.ops.verify import VerifyReport, verify_database

    if json_output:
        output.set_json(True)
    if against is None and (agent or since_snapshot or source or host or tag):
        raise UsageError("--agent, --since-snapshot, --source, --host and --tag need --against SNAPSHOT")
    if against is not None:
        if check:
            raise UsageError("--check does not apply to --against")
        repository = open_repo(repo, password_file)
        snapshot_id = repository.resolve_snapshot(against, snapshot_filter(source, host, tag))
        _verify_against(snapshot_id, db, agent or [], since_snapshot, jobs, repository)
        return
    unknown = [name for name in check or [] if name not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    report = verify_database(database_dsn(db), encryption_key=encryption_key or None, only=check or None)
    output.emit(report, _render_verify)
    if not report.ok:
        assert isinstance(report, VerifyReport)
        raise VerificationFailed(f"{report.summary['error']} error-level finding(s) in {report.database}")


def _verify_against(
    snapshot: str, db: str | None, agents: list[str], since_snapshot: bool, jobs: int, repository: object
) -> None:
    from lifeboat.errors import VerificationFailed
    from lifeboat.ops.verify_against import AgainstOptions, verify_against

    options = AgainstOptions(snapshot=snapshot, agents=agents, since_snapshot=since_snapshot, jobs=jobs)
    report = verify_against(repository, database_dsn(db), options)  # type: ignore[arg-type]
    output.emit(report, _render_against)
    if not report.ok:
        s = report.summary
        raise VerificationFailed(
            f"{report.database} differs from snapshot {report.snapshot[:8]}: {s['missing']} missing, "
            f"{s['extra']} extra, {s['changed']} changed row(s), {s['sequences_differing']} sequence(s)"
        )


def _render_against(report: object) -> None:
    from rich.table import Table

    from lifeboat.ops.verify_against import AgainstReport

    assert isinstance(report, AgainstReport)
    console = output.console
    scope = f" (agents {', '.join(report.agents_compared)})" if report.agents_compared else ""
    console.print(f"[bold]{report.database}[/] against snapshot {report.snapshot[:8]}{scope}")
    differing = [t for t in report.tables if t.missing or t.extra or t.changed]
    if differing:
        table = Table(header_style="bold")
        for column in ("table", "missing", "extra", "changed", "columns", "rows"):
            table.add_column(column, overflow="fold")
        for t in differing:
            rows = [*t.missing_rows[:2], *t.extra_rows[:2], *(c.key for c in t.changed_rows[:2])]
            table.add_row(
                t.table,
                str(t.missing),
                str(t.extra),
                str(t.changed),
                ", ".join(t.changed_columns),
                ", ".join(rows),
            )
        console.print(table)
    for sequence in report.sequences:
        console.print(
            f"sequence {sequence.sequence}: snapshot {sequence.snapshot}, database {sequence.database}"
        )
    if report.agents:
        console.print(
            f"{len(report.agents)} agent(s) affected: " + ", ".join(a.agent_id for a in report.agents[:10])
        )
    s = report.summary
    verdict = (
        "[bold green]EQUAL[/]"
        if report.equal
        else ("[bold yellow]OK[/]" if report.ok else "[bold red]DIFFERS[/]")
    )
    traffic = f", {s['after_snapshot']} written after the snapshot" if report.since_snapshot else ""
    console.print(
        f"{verdict}: {s['rows_database']} rows vs {s['rows_snapshot']} in the snapshot; {s['missing']} missing, "
        f"{s['extra']} extra, {s['changed']} changed{traffic} ({report.seconds:.1f} s)"
    )


def _render_verify(report: object) -> None:
    from rich.table import Table

    from lifeboat.ops.verify import VerifyReport

    assert isinstance(report, VerifyReport)
    console = output.console
    console.print(
        f"[bold]{report.database}[/] schema {report.letta_schema or '?'}, "
        f"alembic {report.revision or '?'} (Letta {report.release})"
    )
    if report.findings:
        table = Table(show_lines=False, header_style="bold")
        for column in ("severity", "check", "table", "rows", "ids", "message"):
            table.add_column(column, overflow="fold")
        for f in report.findings:
            ids = ", ".join(f.ids[:3]) + (" …" if len(f.ids) > 3 or f.count > len(f.ids) else "")
            style = _SEVERITY_STYLE[f.severity.value]
            table.add_row(
                f"[{style}]{f.severity.value}[/]", f.check, f.table, str(f.count or ""), ids, f.message
            )
        console.print(table)
        fixes = [(f.check, f.fix) for f in report.findings if f.fix and f.severity.value != "info"]
        for code, fix in dict(fixes).items():
            console.print(f"  [dim]{code}:[/] {fix}")
    summary = report.summary
    verdict = "[bold green]OK[/]" if report.ok else "[bold red]FAILED[/]"
    console.print(
        f"{verdict}: {summary['error']} error(s), {summary['warning']} warning(s), {summary['info']} info "
        f"from {len(report.checks)} checks in {report.seconds:.1f} s"
    )


@app.command()
def reconcile(
    db: DbOption = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the changes (default: dry run, only print them).")
    ] = False,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Fail created/running runs with no activity for this long (e.g. 30s, 5m, 2h).",
        ),
    ] = "5m",
    server_stopped: Annotated[
        bool,
        typer.Option(
            "--server-stopped",
            help="The Letta server is down: every run in flight is dead, whatever its age (as --older-than 0).",
        ),
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url", help="Letta's Redis (default: LETTA_REDIS_HOST/LETTA_REDIS_PORT, if set)."
        ),
    ] = None,
    no_redis: Annotated[bool, typer.Option("--no-redis", help="Leave Redis alone.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Repair crash leftovers: stuck runs and steps, dangling in-context messages, group drift,
    the message sequence, and stale Redis locks/run pointers/streams. Dry run unless --apply."""
    from lifeboat.letta.repairs import RepairOptions
    from lifeboat.ops.reconcile import parse_duration, reconcile_database, redis_client
    from lifeboat.redact import redact, register_url
    from lifeboat.settings import letta_redis

    if json_output:
        output.set_json(True)
    options = RepairOptions(older_than=parse_duration(older_than), server_stopped=server_stopped)
    client, label = None, None
    if not no_redis:
        target = None if redis_url else letta_redis()
        register_url(redis_url)
        client = redis_client(target, redis_url)
        label = redact(redis_url) if redis_url else (f"{target.host}:{target.port}" if target else None)
    report = reconcile_database(
        database_dsn(db), apply=apply, options=options, redis=client, redis_label=label
    )
    output.emit(report, _render_reconcile)


def _render_reconcile(report: object) -> None:
    from rich.table import Table

    from lifeboat.ops.reconcile import ReconcileReport

    assert isinstance(report, ReconcileReport)
    console = output.console
    mode = "applied" if report.applied else "dry run (use --apply to make these changes)"
    console.print(f"[bold]{report.database}[/] redis {report.redis or 'not configured'}: {mode}")
    shown = report.changed if report.applied else report.planned
    if shown:
        table = Table(header_style="bold")
        for column in ("repair", "target", "id", "change", "note"):
            table.add_column(column, overflow="fold")
        for change in shown:
            table.add_row(change.repair, change.target, change.id, _describe(change.after), change.note)
        console.print(table)
    for change in report.skipped:
        console.print(f"[yellow]skipped[/] {change.repair} {change.id}: it changed since it was planned")
    for problem in report.unrepairable:
        console.print(f"[red]needs a human:[/] {problem}")
    verb = "changed" if report.applied else "would change"
    console.print(f"{len(shown)} {verb} in {report.seconds:.1f} s" if shown else "nothing to reconcile")


def _describe(after: object) -> str:
    if after is None:
        return "delete"
    if isinstance(after, dict):
        return ", ".join(f"{k}={v}" for k, v in after.items() if not isinstance(v, list)) or "update"
    if isinstance(after, list):
        return f"{len(after)} in-context message(s)"
    return str(after)
