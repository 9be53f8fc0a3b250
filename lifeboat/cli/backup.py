"""backup and restore (whole snapshots, or agents with --agent/--name/--tag)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    DbOption,
    MetricsFileOption,
    PasswordFileOption,
    RepoOption,
    database_dsn,
    open_repo,
)
from lifeboat.cli.progress import byte_progress


@app.command()
def backup(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    db: DbOption = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag the snapshot (repeatable).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel COPY connections.")] = 2,
    metrics_file: MetricsFileOption = None,
) -> None:
    """Back up the Letta database (hot: the server keeps running) into a new snapshot."""
    from lifeboat.ops.backup import estimate_bytes, run_backup
    from lifeboat.ops.metrics import recording_backup

    with recording_backup(metrics_file, repo) as record:
        repository = open_repo(repo, password_file)
        dsn = database_dsn(db)
        with byte_progress("backup") as bar:
            result = run_backup(
                repository,
                dsn,
                tags=tag or [],
                jobs=jobs,
                progress=bar.advance,
                on_schema=lambda schema: bar.set_total(estimate_bytes(schema)),
            )
        record(result, repository)
    summary = result.summary()

    def render(s: dict[str, Any]) -> None:
        output.console.print(
            f"snapshot [bold]{s['short_id']}[/] saved: {s['tables']} tables, {s['rows']} rows, "
            f"{s['raw_bytes'] / 1e6:.1f} MB read, {s['bytes_added'] / 1e6:.2f} MB added "
            f"({s['blobs_new']} new blobs, {s['blobs_deduplicated']} deduplicated) in {s['seconds']:.1f} s"
        )
        if s["runs_in_flight"]:
            output.console.print(f"runs in flight at the snapshot instant: {len(s['runs_in_flight'])}")

    output.emit(summary, render)


@app.command()
def restore(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")] = "latest",
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="Admin DSN naming the database to create (default: <db>_restored on the Letta server).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing database (a safety snapshot of it is taken first); with --agent: "
            "restore even when the agent has an active run or Letta holds its lock.",
        ),
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel COPY connections.")] = 2,
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="Restore only this agent (repeatable) into the live database."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Restore the agents whose name matches this glob.")
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Restore the agents carrying this tag.")] = None,
    snapshot_option: Annotated[
        str | None, typer.Option("--snapshot", "-s", help="Snapshot (same as the argument).")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="Agent restore: 'in-place' (same ids) or 'copy' (new ids).")
    ] = "in-place",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Agent restore: print the plan, change nothing.")
    ] = False,
    shared: Annotated[
        str,
        typer.Option(
            "--shared",
            help="Agent restore, rows shared with other agents (blocks, tools, folders, archives, "
            "identities): 'missing' restores them only when missing, 'overwrite' rolls them back too, "
            "'copy' (copy mode) gives the copy its own blocks and archives.",
        ),
    ] = "missing",
    org: Annotated[
        str | None, typer.Option("--org", help="Copy mode: target organization id (default: the agent's).")
    ] = None,
    suffix: Annotated[
        str, typer.Option("--suffix", help="Copy mode: appended to the copies' names.")
    ] = " (restored)",
    db: DbOption = None,
    upgrade: Annotated[
        str | None,
        typer.Option(
            "--upgrade",
            metavar="head|REVISION|RELEASE",
            help="Whole-snapshot restore of an older Letta release: run Letta 0.16.8's migrations in the "
            "temporary database before the switch (to 'head', or to an alembic revision or a release "
            "such as 0.16.8). Prints first "
            "which migrations drop or rewrite data; downgrades are refused.",
        ),
    ] = None,
    encryption_key: Annotated[
        str | None,
        typer.Option(
            "--encryption-key",
            envvar="LETTA_ENCRYPTION_KEY",
            show_default=False,
            help="With --upgrade: Letta's LETTA_ENCRYPTION_KEY, passed to the migrations that encrypt secrets.",
        ),
    ] = None,
) -> None:
    """Restore a whole snapshot into a new database (or, with --force, over an existing one); or,
    with --agent/--name/--tag, bring agents back into the live database (in place or as copies)."""
    from lifeboat import settings
    from lifeboat.errors import UsageError

    snapshot = snapshot_option or snapshot
    if agent or name is not None or tag is not None:
        if target is not None:
            raise UsageError("--target is for whole-snapshot restores; agent restores write to --db")
        _restore_agents(
            snapshot,
            repo,
            password_file,
            agent or [],
            name,
            tag,
            mode,
            shared,
            dry_run,
            force,
            org,
            suffix,
            db,
        )
        return
    if dry_run or db is not None or org is not None:
        raise UsageError("--dry-run, --db and --org apply to agent restores (--agent, --name or --tag)")
    from lifeboat.ops.restore import run_restore

    repository = open_repo(repo, password_file)
    target_dsn = target or _default_target(settings.letta_pg_uri())
    if upgrade is not None:
        from lifeboat.cli.restore_upgrade import restore_with_upgrade

        restore_with_upgrade(repository, snapshot, target_dsn, upgrade, encryption_key, force, jobs)
        return
    with byte_progress("restore") as bar:
        result = run_restore(
            repository,
            snapshot,
            target_dsn,
            force=force,
            jobs=jobs,
            redis=settings.letta_redis(),
            progress=bar.advance,
        )
    summary = result.summary()

    def render(s: dict[str, Any]) -> None:
        output.console.print(
            f"restored snapshot [bold]{s['snapshot'][:8]}[/] into database [bold]{s['database']}[/] "
            f"in {s['seconds']:.1f} s"
        )
        if s["safety_snapshot"]:
            output.console.print(
                f"the replaced database was saved first as snapshot {s['safety_snapshot'][:8]}"
            )
        for warning in s["warnings"]:
            output.console.print(f"[yellow]warning:[/] {warning}")

    output.emit(summary, render)


def _restore_agents(
    snapshot: str,
    repo: str | None,
    password_file: Path | None,
    agents: list[str],
    name: str | None,
    tag: str | None,
    mode: str,
    shared: str,
    dry_run: bool,
    force: bool,
    org: str | None,
    suffix: str,
    db: str | None,
) -> None:
    from lifeboat import settings
    from lifeboat.cli.agents import render_agent_restore
    from lifeboat.errors import UsageError
    from lifeboat.ops.agent_restore import Mode, Options, SharedPolicy, run_agent_restore

    try:
        options = Options(
            mode=Mode(mode), shared=SharedPolicy(shared), dry_run=dry_run, force=force, org=org, suffix=suffix
        )
    except ValueError as exc:
        raise UsageError(f"{exc} (--mode: in-place|copy, --shared: missing|overwrite|copy)") from None
    report = run_agent_restore(
        open_repo(repo, password_file),
        database_dsn(db),
        snapshot_ref=snapshot,
        agent_ids=agents,
        name=name,
        tag=tag,
        options=options,
        redis=settings.letta_redis(),
    )
    output.emit(report.summary(), render_agent_restore)


def _default_target(letta_dsn: str) -> str:
    import psycopg

    from lifeboat.pg import with_database

    name = psycopg.conninfo.conninfo_to_dict(letta_dsn).get("dbname") or "letta"
    return with_database(letta_dsn, f"{name}_restored")
