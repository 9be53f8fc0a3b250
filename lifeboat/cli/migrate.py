"""migrate --to letta-code: agents from a snapshot or the live database into Letta Code's local backend."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    DbOption,
    HostFilterOption,
    PasswordFileOption,
    RepoOption,
    SnapshotTagFilterOption,
    SourceFilterOption,
    database_dsn,
    open_repo,
    snapshot_filter,
)


class Target(StrEnum):
    LETTA_CODE = "letta-code"


@app.command()
def migrate(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Letta Code local-backend directory (default: $LETTA_LOCAL_BACKEND_DIR or ~/.letta/lc-local-backend)."
        ),
    ] = None,
    to: Annotated[
        Target, typer.Option("--to", help="What to migrate to (only letta-code).")
    ] = Target.LETTA_CODE,
    snapshot: Annotated[
        str | None,
        typer.Option("--snapshot", "-s", help="Read agents from this snapshot (id, prefix or 'latest')."),
    ] = None,
    db: DbOption = None,
    agent: Annotated[list[str] | None, typer.Option("--agent", help="Agent id (repeatable).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Agents whose name matches this glob.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Agents carrying this tag.")] = None,
    all_agents: Annotated[bool, typer.Option("--all", help="Every agent.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace agents that exist in the target with other content.")
    ] = False,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    snapshot_tag: SnapshotTagFilterOption = None,
) -> None:
    """Migrate Letta V1 agents into Letta Code's local backend, with their whole history and memory.

    Reads from a snapshot (--snapshot) or the live database (--db, the default when no snapshot is
    given). Agents already in the target are refused unless identical (left alone) or --force.
    """
    from lifeboat.errors import UsageError
    from lifeboat.ops.migrate import default_target, select
    from lifeboat.ops.migrate import migrate as run_migrate
    from lifeboat.ops.migrate_source import database_origin, snapshot_origin

    if json_output:
        output.set_json(True)
    if db is not None and snapshot is not None:
        raise UsageError("give --snapshot or --db, not both")
    target = (directory or default_target()).expanduser().absolute()
    flt = snapshot_filter(source, host, snapshot_tag)
    if snapshot is None and not flt.empty():
        raise UsageError("--source, --host and --snapshot-tag select a snapshot: use them with --snapshot")
    if snapshot is not None:
        repository = open_repo(repo, password_file)
        origin = snapshot_origin(repository, repository.resolve_snapshot(snapshot, flt))
        report = run_migrate(
            origin,
            target,
            select(origin.entries, agent or [], name, tag, all_agents),
            dry_run=dry_run,
            force=force,
        )
    else:
        with database_origin(database_dsn(db)) as origin:
            chosen = select(origin.entries, agent or [], name, tag, all_agents)
            report = run_migrate(origin, target, chosen, dry_run=dry_run, force=force)
    data = report.model_dump(mode="json")
    data["id_map"] = report.id_map
    del report  # thousands of agents: not held twice while the output is written
    output.emit(data, _render)


def _render(data: dict[str, Any]) -> None:
    title = "plan" if data["dry_run"] else "migrated"
    output.console.print(
        f"[bold]{title}[/]: {len(data['agents'])} agent(s) from {data['source']} {data['source_label'][:40]} "
        f"to Letta Code {data['letta_code_version']} local backend {data['target']}"
    )
    from rich.table import Table

    table = Table(header_style="bold")
    for column in (
        "agent",
        "Letta Code id",
        "state",
        "model",
        "messages",
        "blocks",
        "passages",
        "files",
        "tools",
    ):
        table.add_column(column, overflow="fold")
    for agent in data["agents"]:
        counts = agent["counts"]
        cells = [
            f"{counts[k]['v1']}→{counts[k]['written']}"
            for k in ("messages", "blocks", "passages", "files", "tools")
        ]
        table.add_row(agent["name"], agent["id"], agent["state"], agent["model"], *cells)
    output.console.print(table)
    notes = sorted({f"{o['what']}: {o['reason']}" for a in data["agents"] for o in a["left_out"]})
    if notes:
        output.console.print("[bold]not carried over[/] (counts per agent in --json):")
        for note in notes:
            output.console.print(f"  - {note}")
    models = sorted({f"{a['model']}: {a['model_note']}" for a in data["agents"] if a["model_note"]})
    for note in models:
        output.console.print(f"model {note}")
    if data["refused"]:
        output.console.print(f"[yellow]would be refused[/]: {data['refused']}")
    output.console.print(f"done in {data['seconds']:.1f} s")
