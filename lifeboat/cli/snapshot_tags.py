"""tag: add, remove or set snapshot tags (restic's ``tag``; the manifest is rewritten atomically, same id)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    HostFilterOption,
    PasswordFileOption,
    RepoOption,
    SourceFilterOption,
    TagFilterOption,
    open_repo,
    snapshot_filter,
)


@app.command()
def tag(
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SNAPSHOT",
            help="Snapshots (id, unique prefix or 'latest'); without any, those the filters select.",
            show_default=False,
        ),
    ] = None,
    add: Annotated[
        list[str] | None, typer.Option("--add", metavar="TAG", help="Add this tag (repeatable).")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", metavar="TAG", help="Remove this tag (repeatable).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="TAG", help="Replace all tags by these (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only show what would change.")] = False,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag_filter: TagFilterOption = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
) -> None:
    """Add, remove or set the tags of snapshots. Each manifest is rewritten in one atomic step
    under the exclusive lock and keeps its id; an interruption puts back the ones already changed."""
    from lifeboat.repo.tags import TagChange, retag

    change = TagChange(
        add=tuple(add or ()), remove=tuple(remove or ()), set=tuple(set_) if set_ is not None else None
    )
    change.check()
    repository = open_repo(repo, password_file)
    results = retag(
        repository, snapshot_ids or [], change, snapshot_filter(source, host, tag_filter), dry_run=dry_run
    )
    rows = [
        {"id": r.id, "short_id": r.id[:8], "before": r.before, "after": r.after, "changed": r.changed}
        for r in results
    ]
    output.emit({"dry_run": dry_run, "snapshots": rows}, _render)


def _render(result: dict[str, Any]) -> None:
    verb = "would change" if result["dry_run"] else "changed"
    for r in result["snapshots"]:
        if r["changed"]:
            output.console.print(
                f"{r['short_id']}: {','.join(r['before']) or '-'} -> {','.join(r['after']) or '-'}"
            )
    changed = sum(1 for r in result["snapshots"] if r["changed"])
    output.console.print(f"{verb} the tags of {changed} of {len(result['snapshots'])} snapshot(s)")
