"""drill (restore into a throwaway PostgreSQL, verify, optionally use the real server) and drills (history)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    HostFilterOption,
    LongOption,
    MetricsFileOption,
    PasswordFileOption,
    RepoOption,
    SourceFilterOption,
    TagFilterOption,
    TrustSchemaOption,
    TrustUnencryptedOption,
    checked_dsn,
    open_repo,
    snapshot_filter,
)
from lifeboat.cli.progress import restore_progress

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (docs/JSON.md).")]


@app.command()
def drill(
    snapshot: Annotated[
        str, typer.Option("--snapshot", "-s", help="Snapshot id, unique prefix, or 'latest'.")
    ] = "latest",
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Admin DSN naming a NEW database to restore into and drop afterwards "
            "(default: a throwaway embedded PostgreSQL + pgvector).",
        ),
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option("--smoke", help="Start the real Letta server on the restored database and use its API."),
    ] = False,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="Compare the restored database with the snapshot row by row (verify --against).",
        ),
    ] = True,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write drill-<id>.json and drill-<id>.html into this directory."),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel COPY connections.")] = 2,
    metrics_file: MetricsFileOption = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
    trust_schema: TrustSchemaOption = False,
    trust_unencrypted: TrustUnencryptedOption = False,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
    upgrade_to: Annotated[
        str | None,
        typer.Option(
            "--upgrade-to",
            metavar="VERSION",
            help="Rehearse an upgrade: after the restore, keep a safety copy, run this Letta release's own "
            "migrations (e.g. 0.16.8), verify, and start that release's server on the result (implies --smoke).",
        ),
    ] = None,
    encryption_key: Annotated[
        str | None,
        typer.Option(
            "--encryption-key",
            envvar="LETTA_ENCRYPTION_KEY",
            show_default=False,
            help="With --upgrade-to: Letta's LETTA_ENCRYPTION_KEY, for the migrations that encrypt secrets.",
        ),
    ] = None,
) -> None:
    """Prove a snapshot restores: restore it into a throwaway database, verify it, time every phase.

    Exits non-zero when any phase fails (with that failure's exit code, e.g. 13 for a damaged
    repository, 3 for verification errors). Every drill is recorded in the repository.
    """
    from lifeboat.ops.drill import DrillOptions, failure, run_drill

    if json_output:
        output.set_json(True)
    repository = open_repo(repo, password_file)
    snapshot = repository.resolve_snapshot(snapshot, snapshot_filter(source, host, tag))
    target_dsn = checked_dsn(target, "--target", need_database=True) if target else None
    options = DrillOptions(
        snapshot=snapshot,
        target_dsn=target_dsn,
        smoke=smoke,
        jobs=jobs,
        report_dir=report,
        compare=compare,
        trust_schema=trust_schema,
        trust_unencrypted=trust_unencrypted,
    )
    if upgrade_to is not None:
        from lifeboat.ops.drill_upgrade import target_release

        options.upgrade_to = target_release(upgrade_to)
        options.encryption_key = encryption_key or None
    started = time.monotonic()
    with restore_progress("drill: restore", repository, options.snapshot) as bar:
        result = run_drill(
            repository, options, progress=bar.advance, on_phase=None if output.json_mode() else _announce
        )
    if metrics_file is not None:
        from lifeboat.ops.metrics import drill_metrics, update_file

        families = drill_metrics(
            repository.backend.url,
            success=result.ok,
            seconds=time.monotonic() - started,
            rto_seconds=result.rto_seconds,
            phases=result.phase_seconds(),
        )
        update_file(metrics_file, families)
    output.emit(result, _render)
    if not result.ok:
        raise failure(result)


def _announce(phase: str) -> None:
    output.info(f"drill: {phase}…")


def _render(report: Any) -> None:
    table = output.table(
        "phase",
        "seconds",
        "result",
        whole=("phase",),
        title=f"drill {report.id} of snapshot {report.snapshot[:8]}",
    )
    table.columns[1].justify = "right"
    for phase in report.phases:
        table.add_row(
            phase.name, f"{phase.seconds:.2f}", "[green]ok[/]" if phase.ok else f"[red]{phase.detail}[/]"
        )
    table.add_row("[bold]total[/]", f"{report.seconds:.2f}", "")
    output.console.print(table)
    if report.smoke is not None:
        s = report.smoke
        output.console.print(
            f"smoke: server up in {s.server_start_seconds:.1f} s, {s.agents_listed} agents listed, agent "
            f"{s.agent_name}: {s.memory_blocks} blocks, {s.messages} messages, reply of {s.reply_messages} message(s)"
        )
    if report.upgrade is not None:
        _render_upgrade(report.upgrade)
    if report.verify_summary:
        v = report.verify_summary
        output.console.print(f"verify: {v.get('error', 0)} error(s), {v.get('warning', 0)} warning(s)")
    if report.equal is not None:
        c = report.compare_summary
        state = "equal to the snapshot" if report.equal else "DIFFERS from the snapshot"
        output.console.print(f"compare: {c.get('rows_database', 0)} rows, {state}")
        for difference in report.compare_differences[:5]:
            output.console.print(f"  {difference}")
    rto = "—" if report.rto_seconds is None else f"{report.rto_seconds:.1f} s"
    verdict = "[bold green]PASSED[/]" if report.ok else "[bold red]FAILED[/]"
    output.console.print(f"{verdict} in {report.seconds:.1f} s; RTO {rto}")
    for kind, path in report.files.items():
        output.console.print(f"{kind} report: {path}")


def _render_upgrade(up: dict[str, Any]) -> None:
    output.console.print(
        f"upgrade: Letta {up['from_release']} ({up['from_revision']}) → {up['to_release']} "
        f"({up['to_revision']}), {len(up['ran'])} of {up['migrations']} migration(s) ran in {up['seconds']:.1f} s"
    )
    for change in up["data_changes"]:
        what = "; ".join(filter(None, [", ".join(change["drops"]), ", ".join(change["rewrites"])]))
        output.console.print(f"  {change['revision']} (Letta {change['release']}) {change['title']}: {what}")


@app.command()
def drills(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
    long: LongOption = False,
) -> None:
    """List the recorded restore drills, oldest first (--long adds the drill ids)."""
    from lifeboat.ops.drill import drill_history

    if json_output:
        output.set_json(True)
    history = drill_history(open_repo(repo, password_file))

    def render(items: list[Any]) -> None:
        table = output.table(
            *(["id"] if long else []), "time", "snapshot", "result", "seconds", "RTO", "failed phase"
        )
        for d in items:
            table.add_row(
                *([d.id] if long else []),
                output.local_time(d.started_at),
                d.snapshot[:8],
                "[green]passed[/]" if d.ok else "[red]FAILED[/]",
                f"{d.seconds:.1f}",
                "—" if d.rto_seconds is None else f"{d.rto_seconds:.1f}",
                d.failed_phase or "",
            )
        output.console.print(table)

    output.emit(history, render)
