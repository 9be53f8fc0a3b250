"""export / import: Letta agent files (.af)."""

from __future__ import annotations

import sys
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
    SourceFilterOption,
    TagFilterOption,
    database_dsn,
    snapshot_filter,
)
from lifeboat.errors import UsageError, ValidationFailed


@app.command()
def export(
    output_path: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="A .af/.json file (all agents in one file), a directory (one file per agent), or '-'.",
        ),
    ],
    agent: Annotated[
        list[str] | None, typer.Option("--agent", "-a", help="Agent id to export (repeatable).")
    ] = None,
    all_agents: Annotated[bool, typer.Option("--all", help="Export every agent of the database.")] = False,
    complete: Annotated[
        bool,
        typer.Option(
            "--complete",
            help="Also carry what Letta's export drops (whole history, archival passages with embeddings,"
            " identities, conversations); Letta's importer ignores these extras.",
        ),
    ] = False,
    db: DbOption = None,
    from_snapshot: Annotated[
        str | None,
        typer.Option(
            "--from-snapshot", help="Export from a lifeboat snapshot (id, prefix or 'latest') instead."
        ),
    ] = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    scratch: Annotated[
        str | None,
        typer.Option(
            "--scratch",
            help="With --from-snapshot: admin DSN naming a NEW database to restore into (dropped after);"
            " default: a throwaway local PostgreSQL.",
        ),
    ] = None,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
) -> None:
    """Export agents as Letta 0.16.8 agent files (secrets blanked), from one consistent read."""
    if bool(agent) == all_agents:
        raise UsageError("name agents with --agent ID (repeatable) or use --all")
    agent_ids = None if all_agents else list(agent or [])
    if not from_snapshot and (source or host or tag):
        raise UsageError("--source, --host and --tag select a snapshot: use them with --from-snapshot")
    if from_snapshot:
        from lifeboat.cli.common import open_repo
        from lifeboat.ops.export_snapshot import export_from_snapshot

        repository = open_repo(repo, password_file)
        snapshot_id = repository.resolve_snapshot(from_snapshot, snapshot_filter(source, host, tag))
        report = export_from_snapshot(
            repository, snapshot_id, agent_ids, output_path, complete=complete, scratch_dsn=scratch
        )
    else:
        from lifeboat.ops.export import export_agents

        report = export_agents(database_dsn(db), agent_ids, output_path, complete=complete)

    def render(_: Any) -> None:
        for item in report.files:
            names = ", ".join(item.agent_names)
            where = "stdout" if item.path == "-" else item.path
            output.info(f"{where}: {names} ({item.messages} messages, {item.bytes / 1e3:.1f} kB)")
        kind = "complete " if report.complete else ""
        output.info(
            f"exported {sum(len(f.agent_ids) for f in report.files)} agent(s) into {len(report.files)} {kind}file(s)"
        )

    summary = {
        "complete": report.complete,
        "revision": report.revision,
        "files": [vars(f) for f in report.files],  # with each file's id map (file id -> database id)
    }
    if str(output_path) == "-":  # the file itself is on stdout
        render(summary)
    else:
        output.emit(summary, render)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The agent file (.af) to import, or '-' for stdin.")],
    db: DbOption = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Organization to import into (default: Letta's default org).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="New name for the (first) imported agent.")
    ] = None,
    secrets: Annotated[
        Path | None,
        typer.Option("--secrets", help="JSON object of secret name -> value for the agents' secrets."),
    ] = None,
    overwrite_tools: Annotated[
        bool,
        typer.Option(
            "--overwrite-tools", help="Replace same-named tools of the organization with the file's."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and write inside a transaction, then roll back.")
    ] = False,
    max_bytes: Annotated[int, typer.Option("--max-bytes", help="Refuse files larger than this.", min=1)] = 256
    * 1024
    * 1024,
    allow_stdio_mcp: Annotated[
        bool,
        typer.Option(
            "--allow-stdio-mcp", help="Import stdio MCP servers (they run a command on the Letta host)."
        ),
    ] = False,
    allow_custom_tools: Annotated[
        bool,
        typer.Option(
            "--allow-custom-tools",
            help="Create tools that carry code (source, pip/npm requirements): Letta runs it on its host.",
        ),
    ] = False,
) -> None:
    """Import an agent file directly into a Letta database, in one transaction (new ids for everything)."""
    from dataclasses import asdict, replace

    from lifeboat.letta.agent_file_import import Options
    from lifeboat.letta.agent_file_secrets import load_secrets
    from lifeboat.letta.agent_file_validate import DEFAULT_LIMITS
    from lifeboat.ops.import_af import import_agent_file

    options = Options(
        name=name,
        secrets=load_secrets(secrets) if secrets else {},
        overwrite_tools=overwrite_tools,
        allow_custom_tools=allow_custom_tools,
    )
    source = sys.stdin.buffer if str(file) == "-" else file
    try:
        report = import_agent_file(
            source,
            database_dsn(db),
            organization_id=org,
            options=options,
            dry_run=dry_run,
            limits=replace(DEFAULT_LIMITS, max_bytes=max_bytes, allow_stdio_mcp=allow_stdio_mcp),
        )
    except ValidationFailed as exc:
        if not output.json_mode():
            for problem in exc.problems:
                output.info(f"  - {problem}")
        raise

    def render(r: dict[str, Any]) -> None:
        verb = "would import" if r["dry_run"] else "imported"
        output.console.print(
            f"{verb} {len(r['agent_ids'])} agent(s) from {r['file']}: {', '.join(r['agent_ids'])}"
        )
        output.console.print("id map (file id -> database id):")
        for file_id, db_id in r["id_map"].items():
            note = " (existing)" if file_id in r["reused"] else ""
            output.console.print(f"  {file_id} -> {db_id}{note}")
        for tool in r["custom_tools"]:
            output.console.print(f"installs code: tool {tool['name']!r} ({tool['action']})")
        for warning in r["warnings"]:
            output.info(f"[yellow]warning:[/] {warning}")
        if r["dry_run"]:
            output.console.print("dry run: rolled back, nothing was written")

    output.emit(asdict(report), render)
