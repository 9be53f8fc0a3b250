"""agents list, diff, and the rendering of agent-level restores (``restore --agent``)."""

from __future__ import annotations

from typing import Annotated, Any

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
    TagFilterOption,
    database_dsn,
    open_repo,
    snapshot_filter,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Agent name pattern (shell glob, e.g. 'support-*').")
]
TagOption = Annotated[str | None, typer.Option("--tag", help="Only agents carrying this tag.")]

agents_app = typer.Typer(help="Agents in a snapshot or in the live database.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
def list_agents(
    snapshot: Annotated[
        str | None,
        typer.Option("--snapshot", "-s", help="Snapshot id, unique prefix or 'latest' (the default)."),
    ] = None,
    db: DbOption = None,
    name: NameOption = None,
    tag: TagOption = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    snapshot_tag: SnapshotTagFilterOption = None,
    long: LongOption = False,
) -> None:
    """List the agents of a snapshot (from its manifest) or, with --db, of the live database."""
    from lifeboat.errors import UsageError
    from lifeboat.ops.agents import database_agents, snapshot_agents

    if json_output:
        output.set_json(True)
    flt = snapshot_filter(source, host, snapshot_tag)
    if db is not None and (snapshot is not None or not flt.empty()):
        raise UsageError("give --db or a snapshot (--snapshot/--source/--host/--snapshot-tag), not both")
    if db is not None:
        result = database_agents(database_dsn(db), name=name, tag=tag)
    else:
        repository = open_repo(repo, password_file)
        snapshot_id = repository.resolve_snapshot(snapshot or "latest", flt)
        result = snapshot_agents(repository, snapshot_id, name=name, tag=tag)
    output.emit(result, lambda r: _render_list(r, long=long))


def short_agent_id(agent_id: str, *, long: bool = False) -> str:
    """``agent-1a2b3c4d`` for ``agent-1a2b3c4d-…`` (restic-style short id; ``restore --agent`` takes
    unique prefixes), the whole id with ``long``. Works for any Letta id (``block-…``, ``tool-…``)."""
    if long or not agent_id:
        return agent_id
    prefix, _, rest = agent_id.partition("-")
    return f"{prefix}-{rest[:8]}" if rest else agent_id[:14]


def _render_list(result: Any, *, long: bool = False) -> None:
    where = (
        f"snapshot {result.snapshot[:8]} ({output.local_time(result.snapshot_time)})"
        if result.source == "snapshot"
        else f"database {result.database}"
    )
    columns = ["id", "name", "tags", "messages", "passages", "last activity"]
    if long:
        columns[3:3] = ["org"]
        columns[-1:-1] = ["blocks"]
    table = output.table(*columns, whole=("id", "last activity"))
    for a in result.agents:
        cells = [
            short_agent_id(a.id, long=long),
            a.name,
            ", ".join(a.tags),
            str(a.messages),
            str(a.passages),
            output.local_time(a.last_activity),
        ]
        if long:
            cells[3:3] = [a.organization_id or ""]
            cells[-1:-1] = [str(a.blocks)]
        table.add_row(*cells)
    output.console.print(table)
    output.console.print(f"{len(result.agents)} agent(s) in {where}")


@app.command()
def diff(
    snapshot_a: Annotated[str, typer.Argument(help="The older snapshot (id, prefix or 'latest').")],
    snapshot_b: Annotated[str, typer.Argument(help="The newer snapshot (id, prefix or 'latest').")],
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent (by id).")] = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
) -> None:
    """What changed for agents between two snapshots: memory blocks (unified diffs), attached
    blocks, tools and folders, messages and archival passages."""
    from lifeboat.ops.diff import run_diff

    if json_output:
        output.set_json(True)
    repository = open_repo(repo, password_file)
    flt = snapshot_filter(source, host, tag)
    a, b = (repository.resolve_snapshot(ref, flt) for ref in (snapshot_a, snapshot_b))
    report = run_diff(repository, a, b, agent_id=agent)
    output.emit(report, _render_diff)


def _render_diff(report: Any) -> None:
    console = output.console
    console.print(f"[bold]diff[/] {report.snapshot_a[:8]} → {report.snapshot_b[:8]}")
    for agent in report.agents:
        console.print(f"\n[bold]{agent.name}[/] {agent.id}: {agent.status}")
        if agent.fields:
            console.print(f"  fields changed: {', '.join(agent.fields)}")
        for change in agent.blocks_changed:
            console.print(f"  block [bold]{change.label}[/] ({change.id}):")
            for line in change.diff.splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
                console.print(f"    [{style}]{_escape(line)}[/]")
        for title, items, sign in (
            ("blocks attached", agent.blocks_attached, "+"),
            ("blocks detached", agent.blocks_detached, "-"),
            ("tools attached", agent.tools_attached, "+"),
            ("tools detached", agent.tools_detached, "-"),
            ("folders attached", agent.folders_attached, "+"),
            ("folders detached", agent.folders_detached, "-"),
            ("messages added", agent.messages_added, "+"),
            ("messages removed", agent.messages_removed, "-"),
            ("passages added", agent.passages_added, "+"),
            ("passages removed", agent.passages_removed, "-"),
        ):
            if items:
                console.print(f"  {title}: {len(items)}")
                for item in items[:20]:
                    console.print(f"    {sign} {_escape(item.name or item.id)}")
                if len(items) > 20:
                    console.print(f"    … {len(items) - 20} more")
    console.print(f"\n{len(report.agents)} agent(s) differ, {report.unchanged} unchanged")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- restore --agent rendering (the command itself lives in restore.py) --------------------------------


def render_agent_restore(report: Any, *, long: bool = False) -> None:
    """Plan (dry run) or report of an agent-level restore, for people (80 columns; ``long``: full ids)."""
    console = output.console
    verb = "would restore" if report["dry_run"] else "restored"
    console.print(
        f"{verb} {len(report['agents'])} agent(s) from snapshot [bold]{report['snapshot'][:8]}[/] "
        f"{report['mode']} into {report['database']} (shared rows: {report['shared_policy']})"
    )
    chosen = report.get("snapshot_chosen")
    if chosen:
        # Two short lines: on 80 columns one long line wrapped, splitting the date (its length
        # varies with the database and host names).
        console.print(f"using snapshot {chosen['short_id']} taken {output.local_time(chosen['time'])}")
        console.print(
            f"  of database {chosen['source_database'] or '?'} on {chosen['hostname']} ({chosen['chosen_by']})"
        )
    agents = output.table("id", "name", "now", "new id", whole=("id", "new id"), title="agents")
    for a in report["agents"]:
        state = ("live" if a["live"] else "missing") + ("" if a["requested"] else ", group member")
        agents.add_row(
            short_agent_id(a["id"], long=long), a["name"], state, short_agent_id(a["new_id"] or "", long=long)
        )
    console.print(agents)
    removed = "to remove" if report["dry_run"] else "removed"
    tables = output.table("table", "in snapshot", "to write", removed, "written", title="rows per table")
    for column in tables.columns[1:]:
        column.justify = "right"
    for t in sorted(report["tables"], key=lambda t: t["table"]):
        if t["snapshot_rows"] or t["remove"] or t["write"]:
            written = "" if t["written"] is None else str(t["written"])
            tables.add_row(t["table"], str(t["snapshot_rows"]), str(t["write"]), str(t["remove"]), written)
    console.print(tables)
    _render_entities(report["entities"], long=long)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")
    if report.get("refused"):
        console.print(f"[bold red]would be refused:[/] {report['refused']} (pass --force to go ahead)")
    read = report["read"]
    console.print(
        f"read {read['bytes'] / 1e6:.2f} MB of the snapshot's {read['snapshot_bytes'] / 1e6:.2f} MB "
        f"({read['share'] * 100:.2f}%, {read['blobs']} blobs); redis: {report['redis']}; "
        f"{report['seconds']:.2f} s"
    )


def _render_entities(entities: list[dict[str, Any]], *, long: bool = False) -> None:
    """Written, matched or skipped rows one per line; rows left as they are summarized per kind."""
    quiet = ("keep", "reuse")
    shown = [e for e in entities if e["action"] not in quiet]
    if shown:
        table = output.table(
            "kind", "name", "id", "decision", "other agents using it", title="shared and referenced rows"
        )
        for e in shown:
            target = f" → {short_agent_id(e['target_id'], long=long)}" if e["target_id"] else ""
            table.add_row(
                e["kind"], e["label"], short_agent_id(e["id"], long=long) + target, e["action"], _agents(e)
            )
        output.console.print(table)
    untouched: dict[tuple[str, str], list[str]] = {}  # (kind, action) -> names
    for e in entities:
        if e["action"] in quiet:
            untouched.setdefault((e["kind"], e["action"]), []).append(e["label"] or e["id"])
    for (kind, action), labels in sorted(untouched.items()):
        names = ", ".join(labels[:8]) + (f" (+{len(labels) - 8})" if len(labels) > 8 else "")
        verb = "left as they are now" if action == "keep" else "shared with the copy as they are"
        output.console.print(f"{len(labels)} {kind}(s) {verb}: {names}")


def _agents(entity: dict[str, Any]) -> str:
    """How many other live agents use the row; for an overwrite, which ones see the change."""
    ids = entity["affects"]
    if not ids:
        return str(entity["used_by"] or "")
    return f"{len(ids)} see the change: " + ", ".join(ids[:2]) + (" …" if len(ids) > 2 else "")
