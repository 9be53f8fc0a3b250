"""Repository commands: init, snapshots, check."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import (
    HostFilterOption,
    LongOption,
    PasswordFileOption,
    RepoOption,
    SourceFilterOption,
    TagFilterOption,
    open_repo,
    snapshot_filter,
)
from lifeboat.cli.progress import byte_progress
from lifeboat.errors import CorruptRepository, UsageError


@app.command()
def init(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    insecure_no_encryption: Annotated[
        bool,
        typer.Option(
            "--insecure-no-encryption",
            help="Store backups UNENCRYPTED (conversations, memory and keys in clear). Not recommended.",
        ),
    ] = False,
) -> None:
    """Create a repository (encrypted by default): a local path or s3://bucket/prefix."""
    from lifeboat import settings
    from lifeboat.repo.repository import Repository

    config = settings.load_config()
    url = settings.repository_url(repo, config)
    secret = None
    if not insecure_no_encryption:
        secret = settings.passphrase(password_file, config=config, confirm=True)
        if not secret:
            raise UsageError(
                "an encrypted repository needs a passphrase: --password-file, LIFEBOAT_PASSWORD, or a terminal "
                "prompt (or opt out with --insecure-no-encryption)"
            )
    created = Repository.init(url, secret, encrypt=not insecure_no_encryption)
    result = {"repository": created.backend.url, "encrypted": created.config.encrypted}
    output.emit(
        result,
        lambda r: output.console.print(
            f"created {'encrypted' if r['encrypted'] else '[bold red]UNENCRYPTED[/]'} repository at {r['repository']}"
        ),
    )


def _snapshot_row(snapshot: Any) -> dict[str, Any]:
    from lifeboat.ops import snapshot_layout as layout

    source = layout.source_document(snapshot)
    letta = layout.letta_document(snapshot)
    return {
        "id": snapshot.id,
        "short_id": snapshot.short_id,
        "time": snapshot.time.isoformat(),
        "hostname": snapshot.hostname,
        "tags": snapshot.tags,
        "database": source.database,
        "server_version": source.server_version,
        "letta_revision": source.letta_revision,
        "letta_release": source.letta_release,
        "agents": len(letta.agents or []),
        "runs_in_flight": len(letta.runs_in_flight),
        "tables": len(snapshot.streams),
        "rows": sum(stream.records for stream in snapshot.streams),
        "raw_bytes": snapshot.raw_size(),
    }


@app.command()
def snapshots(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
    long: LongOption = False,
) -> None:
    """List the snapshots in the repository, oldest first (those matching --source/--host/--tag)."""
    repository = open_repo(repo, password_file)
    from lifeboat.repo.repair import damage_marks

    flt = snapshot_filter(source, host, tag)
    marks = damage_marks(repository)

    def row(snapshot: Any) -> dict[str, Any] | None:
        if not flt.matches(snapshot):
            return None
        error = {"error": marks[snapshot.id]} if snapshot.id in marks else {}
        return {**_snapshot_row(snapshot), "damaged": snapshot.id in marks, **error}

    readable, damaged = repository.scan_snapshots(row)
    rows = [found for found in readable if found is not None]
    rows += [
        {"id": i, "short_id": i[:8], "damaged": True, "error": why} for i, why in sorted(damaged.items())
    ]
    output.emit(rows, lambda items: _render_snapshots(items, long=long))


def _render_snapshots(items: list[dict[str, Any]], *, long: bool) -> None:
    """restic's layout: short ids and local times that fit 80 columns; --long adds full ids and more."""
    columns = ["id", "time", "host", "database", "tags", "size"]
    if long:
        columns[5:5] = ["letta", "agents", "rows"]
    table = output.table(*columns)
    for r in items:
        shown_id = r["id"] if long else r["short_id"]
        if r.get("damaged") and "time" not in r:
            table.add_row(shown_id, "[red]damaged: manifest unreadable[/]", *[""] * (len(columns) - 2))
            continue
        tags = [*r["tags"], "[red]DAMAGED[/]"] if r.get("damaged") else r["tags"]
        cells = [
            shown_id,
            output.local_time(r["time"]),
            r["hostname"],
            str(r["database"] or ""),
            ",".join(tags),
            _human_bytes(r["raw_bytes"]),
        ]
        if long:
            cells[5:5] = [str(r["letta_release"] or ""), str(r["agents"]), str(r["rows"])]
        table.add_row(*cells)
    output.console.print(table)
    output.console.print(f"{len(items)} snapshot(s)")


@app.command()
def check(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    read_data: Annotated[bool, typer.Option("--read-data", help="Read and verify every blob.")] = False,
    read_data_subset: Annotated[
        str | None,
        typer.Option("--read-data-subset", help="Read and verify a random share of packs, e.g. 10%."),
    ] = None,
) -> None:
    """Check the repository's structure (and with --read-data its data). Exit 13 on damage."""
    repository = open_repo(repo, password_file)
    subset = _percent(read_data_subset) if read_data_subset else None
    reading = read_data or subset is not None
    with byte_progress("check --read-data") as bar:
        report = repository.check(
            read_data=reading, subset_percent=subset, progress=bar.absolute if reading else None
        )

    def render(r: Any) -> None:
        for finding in r.findings:
            style = {"error": "red", "warning": "yellow"}.get(finding.severity, "")
            output.console.print(
                f"[{style}]{finding.severity}[/]: {finding.message}" if style else finding.message
            )
            for blob_id in finding.blob_ids:
                needing = r.damaged_blobs.get(blob_id, [])
                output.console.print(
                    f"  blob {blob_id} needed by snapshots: {', '.join(s[:8] for s in needing) or '-'}"
                )
        output.console.print(
            f"checked {r.snapshots_checked} snapshots, {r.packs_checked} packs, {r.blobs_checked} blobs"
            f" (read {r.blobs_read}): "
            + ("[green]no errors[/]" if r.ok else f"[red]{len(r.errors)} error(s)[/]")
        )

    output.emit(report, render)
    if not report.ok:
        raise CorruptRepository(
            f"repository check found {len(report.errors)} error(s); affected snapshots: "
            + (", ".join(s[:8] for s in report.affected_snapshots) or "none")
        )


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise UsageError(f"--read-data-subset takes a percentage like 10%, not {text!r}") from None
    if not 0 < value <= 100:
        raise UsageError("--read-data-subset must be between 0 and 100%")
    return value


def _human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
