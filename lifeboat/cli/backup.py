"""backup: the Letta database into a new snapshot."""

from __future__ import annotations

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
    start_opening_repo,
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
    any_database: Annotated[
        bool,
        typer.Option("--any-database", help="Back up a database even when it holds no Letta schema."),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read every row, even those unchanged since the last snapshot (after restoring the "
            "server's data directory from a file-system snapshot, say).",
        ),
    ] = False,
) -> None:
    """Back up the Letta database (hot: the server keeps running) into a new snapshot."""
    from lifeboat.ops.metrics import recording_backup

    with recording_backup(metrics_file, repo) as record:
        opening = start_opening_repo(repo, password_file)
        # imported while the repository key is derived (an incremental backup's start-up)
        from lifeboat.ops.backup import estimate_bytes, run_backup

        repository = opening()
        dsn = database_dsn(db)
        with byte_progress("backup") as bar:
            result = run_backup(
                repository,
                dsn,
                tags=tag or [],
                jobs=jobs,
                progress=bar.advance,
                on_schema=lambda schema: bar.set_total(estimate_bytes(schema)),
                on_lock_wait=bar.note,
                any_database=any_database,
                full=full,
            )
        record(result, repository)
    summary = result.summary()

    def render(s: dict[str, Any]) -> None:
        output.console.print(
            f"snapshot [bold]{s['short_id']}[/] saved: {s['tables']} tables, {s['rows']} rows, "
            f"{s['raw_bytes'] / 1e6:.1f} MB read, {s['bytes_added'] / 1e6:.2f} MB added "
            f"({s['blobs_new']} new blobs, {s['blobs_deduplicated']} deduplicated) in {s['seconds']:.1f} s"
        )
        kept = s["incremental"].get("bytes_kept", 0)
        if kept:
            output.console.print(
                f"unchanged since snapshot {s['incremental']['parent'][:8]}: {kept / 1e6:.1f} MB not read again"
            )
        if s["runs_in_flight"]:
            output.console.print(f"runs in flight at the snapshot instant: {len(s['runs_in_flight'])}")

    output.emit(summary, render)
