"""restore: a whole snapshot into a database, or agents (--agent/--name/--tag) into the live one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    DbOption,
    HostFilterOption,
    LongOption,
    PasswordFileOption,
    RepoOption,
    SnapshotTagFilterOption,
    SourceFilterOption,
    TrustSchemaOption,
    TrustUnencryptedOption,
    checked_dsn,
    database_dsn,
    open_repo,
    snapshot_filter,
    start_opening_repo,
)
from lifeboat.cli.progress import restore_progress
from lifeboat.errors import CorruptRepository, Interrupted, UsageError, note_rolled_back

if TYPE_CHECKING:
    from lifeboat.ops.restore import Trust


class RestoreMode(StrEnum):
    """--mode of an agent restore."""

    IN_PLACE = "in-place"
    COPY = "copy"


class SharedRows(StrEnum):
    """--shared: what an agent restore does with rows other agents share."""

    MISSING = "missing"
    OVERWRITE = "overwrite"
    COPY = "copy"


@dataclass(frozen=True)
class AgentSelection:
    """Which agents an agent restore brings back, and how (the agent options as one object)."""

    agents: list[str]
    name: str | None
    tag: str | None
    mode: RestoreMode
    shared: SharedRows
    dry_run: bool
    force: bool
    org: str | None
    suffix: str

    @property
    def selects(self) -> bool:
        return bool(self.agents) or self.name is not None or self.tag is not None


@dataclass(frozen=True)
class SnapshotFilters:
    """--source/--host/--snapshot-tag: which snapshots 'latest' (or no snapshot) may pick."""

    sources: list[str]
    hosts: list[str]
    tags: list[str]

    def build(self) -> Any:
        return snapshot_filter(self.sources, self.hosts, self.tags)


@app.command()
def restore(
    snapshot: Annotated[
        str | None,
        typer.Argument(
            metavar="SNAPSHOT",
            help="Snapshot id, unique prefix, or 'latest' (the default: the newest matching the filters; "
            "an agent restore without one uses the newest snapshot of the target database).",
            show_default=False,
        ),
    ] = None,
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
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel COPY connections.")] = 2,
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
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    snapshot_tag: SnapshotTagFilterOption = None,
    long: LongOption = False,
    mode: Annotated[
        RestoreMode,
        typer.Option("--mode", help="Agent restore: 'in-place' (same ids) or 'copy' (new ids)."),
    ] = RestoreMode.IN_PLACE,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Agent restore: print the plan, change nothing.")
    ] = False,
    shared: Annotated[
        SharedRows,
        typer.Option(
            "--shared",
            help="Agent restore, rows shared with other agents (blocks, tools, folders, archives, "
            "identities): 'missing' restores them only when missing, 'overwrite' rolls them back too, "
            "'copy' (copy mode) gives the copy its own blocks and archives.",
        ),
    ] = SharedRows.MISSING,
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
            help="With --upgrade (or an agent restore from an older release's snapshot): Letta's "
            "LETTA_ENCRYPTION_KEY, passed to the migrations that encrypt secrets.",
        ),
    ] = None,
    trust_schema: TrustSchemaOption = False,
    trust_unencrypted: TrustUnencryptedOption = False,
    other_deployment: Annotated[
        bool,
        typer.Option(
            "--other-deployment",
            help="With --force: replace the database even when it holds a different Letta deployment "
            "(or none) than the snapshot's source.",
        ),
    ] = False,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Restore a damaged snapshot anyway: everything still readable goes in, and the tables, "
            "row counts and agents that lost rows are reported; exits 13 when anything was lost.",
        ),
    ] = False,
) -> None:
    """Restore a whole snapshot into a new database (or, with --force, over an existing one); or,
    with --agent/--name/--tag, bring agents back into the live database (in place or as copies)."""
    ref = snapshot_option or snapshot
    filters = SnapshotFilters(source or [], host or [], snapshot_tag or [])
    selection = AgentSelection(agent or [], name, tag, mode, shared, dry_run, force, org, suffix)
    if selection.selects:
        if target is not None or upgrade is not None or partial:
            raise UsageError(
                "--target, --upgrade and --partial are for whole-snapshot restores; agent restores write to --db"
            )
        restore_agents(ref, repo, password_file, selection, db, encryption_key, filters, long=long)
        return
    agent_only = {
        "--dry-run": dry_run,
        "--db": db is not None,
        "--org": org is not None,
        "--mode": mode is not RestoreMode.IN_PLACE,
        "--shared": shared is not SharedRows.MISSING,
    }
    given = [flag for flag, used in agent_only.items() if used]
    if given:
        raise UsageError(
            f"{', '.join(given)} apply to agent restores: select agents with --agent, --name or --tag"
        )
    if partial and upgrade is not None:
        raise UsageError("--partial and --upgrade cannot be combined")
    restore_snapshot(
        ref or "latest",
        repo,
        password_file,
        target,
        force=force,
        jobs=jobs,
        upgrade=upgrade,
        encryption_key=encryption_key,
        trust=_trust(trust_schema, trust_unencrypted, other_deployment),
        filters=filters,
        partial=partial,
    )


def _trust(schema: bool, unencrypted: bool, other_deployment: bool) -> Trust:
    from lifeboat.ops.restore import Trust

    return Trust(schema=schema, unencrypted=unencrypted, other_deployment=other_deployment)


def restore_snapshot(
    snapshot: str,
    repo: str | None,
    password_file: Path | None,
    target: str | None,
    *,
    force: bool,
    jobs: int,
    upgrade: str | None = None,
    encryption_key: str | None = None,
    trust: Trust | None = None,
    filters: SnapshotFilters | None = None,
    partial: bool = False,
) -> None:
    """The whole snapshot into ``target`` (default: ``<letta db>_restored`` on the Letta server);
    with ``upgrade``, migrated to that Letta revision before the switch."""
    from lifeboat import redact, settings

    target_dsn = (
        checked_dsn(target, "--target", need_database=True)
        if target is not None
        else _default_target(database_dsn(None))
    )
    opening = start_opening_repo(repo, password_file)
    from lifeboat.ops.restore import run_restore  # imported while the repository key is derived

    repository = opening()
    if filters is not None:
        snapshot = repository.resolve_snapshot(snapshot, filters.build())
    if upgrade is not None:
        from lifeboat.cli.restore_upgrade import restore_with_upgrade

        redact.register(encryption_key)
        restore_with_upgrade(
            repository,
            snapshot,
            target_dsn,
            upgrade,
            encryption_key,
            force,
            jobs,
            trust or _trust(False, False, False),
        )
        return
    with restore_progress("restore", repository, snapshot) as bar:
        result = run_restore(
            repository,
            snapshot,
            target_dsn,
            force=force,
            jobs=jobs,
            redis=settings.letta_redis(),
            progress=bar.advance,
            trust=trust or _trust(False, False, False),
            notify=None if output.json_mode() else _announce,
            partial=partial,
        )
    output.emit(result.summary(), _render_snapshot_restore)
    if result.partial is not None:  # a partial success is not a success
        raise CorruptRepository(
            f"snapshot {result.snapshot.short_id} was damaged: restored into {result.database} without "
            f"{result.partial.rows_lost} row(s) of {len(result.partial.tables)} table(s) (see the report above)"
        )


def _announce(line: str) -> None:
    """One unwrapped line on stderr (stdout stays clean for --json), before the fact."""
    output.err_console.print(line, soft_wrap=True, markup=False, highlight=False)


def _render_snapshot_restore(s: dict[str, Any]) -> None:
    output.console.print(
        f"restored snapshot [bold]{s['snapshot'][:8]}[/] into database [bold]{s['database']}[/] "
        f"in {s['seconds']:.1f} s"
    )
    if s["safety_snapshot"]:
        output.console.print(f"the replaced database was saved first as snapshot {s['safety_snapshot'][:8]}")
    for warning in s["warnings"]:
        output.console.print(f"[yellow]warning:[/] {warning}")
    if s.get("partial"):
        _render_loss(s["partial"])


def _render_loss(p: dict[str, Any]) -> None:
    output.console.print(f"[red]partial restore:[/] {p['rows_lost']} row(s) lost ({p['blobs_lost']} blob(s))")
    for table in p["tables"]:
        output.console.print(f"  table {table['table']}: {table['rows_lost']} row(s) lost", markup=False)
    if p["agents"]:
        output.console.print(
            f"  agents that may have lost rows (ids within a lost blob's key range): {', '.join(p['agents'])}",
            soft_wrap=True,
            markup=False,
        )
    for key in p["foreign_keys_not_valid"]:
        output.console.print(
            f"  foreign key {key} left NOT VALID (it references lost rows)", soft_wrap=True, markup=False
        )


def restore_agents(
    snapshot: str | None,
    repo: str | None,
    password_file: Path | None,
    selection: AgentSelection,
    db: str | None,
    encryption_key: str | None = None,
    filters: SnapshotFilters | None = None,
    *,
    long: bool = False,
) -> None:
    """The selected agents into the live database (``--db``), in one transaction. From an older
    Letta release's snapshot they are taken from a sandbox copy upgraded to the live revision.
    Without a snapshot: the newest snapshot of the target database (printed first)."""
    from lifeboat import redact, settings
    from lifeboat.cli.agents import render_agent_restore
    from lifeboat.ops.agent_restore import Mode, Options, SharedPolicy
    from lifeboat.ops.agent_upgrade import run_agent_restore_any_release
    from lifeboat.ops.snapshot_filter import choose_for_database

    if encryption_key:
        redact.register(encryption_key)

    options = Options(
        mode=Mode(selection.mode.value),
        shared=SharedPolicy(selection.shared.value),
        dry_run=selection.dry_run,
        force=selection.force,
        org=selection.org,
        suffix=selection.suffix,
    )
    dsn = database_dsn(db)
    repository = open_repo(repo, password_file)
    filters = filters or SnapshotFilters([], [], [])
    found, chosen = choose_for_database(
        repository, snapshot, dsn, sources=filters.sources, hosts=filters.hosts, tags=filters.tags
    )
    try:
        report = run_agent_restore_any_release(
            repository,
            dsn,
            snapshot_ref=found,  # read once: a big deployment's manifest is tens of MB parsed
            agent_ids=selection.agents,
            name=selection.name,
            tag=selection.tag,
            options=options,
            redis=settings.letta_redis(),
            encryption_key=encryption_key or None,
        )
    except Interrupted as exc:
        # run_agent_restore writes in one transaction, which the interruption aborted
        note_rolled_back(exc, "the agent restore's transaction (the live database is unchanged)")
        raise
    summary = report.summary()
    summary["snapshot_chosen"] = chosen.model_dump()
    output.emit(summary, lambda r: render_agent_restore(r, long=long))


def _default_target(letta_dsn: str) -> str:
    import psycopg

    from lifeboat.pg import with_database

    name = psycopg.conninfo.conninfo_to_dict(letta_dsn).get("dbname") or "letta"
    return with_database(letta_dsn, f"{name}_restored")
