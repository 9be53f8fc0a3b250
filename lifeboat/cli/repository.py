"""Repository commands: init, snapshots, check."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import PasswordFileOption, RepoOption, open_repo
from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.ops import snapshot_layout as layout


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
def snapshots(repo: RepoOption = None, password_file: PasswordFileOption = None) -> None:
    """List the snapshots in the repository, oldest first."""
    repository = open_repo(repo, password_file)
    readable, damaged = repository.scan_snapshots()
    rows = [_snapshot_row(snapshot) for snapshot in readable]
    rows += [
        {"id": i, "short_id": i[:8], "damaged": True, "error": why} for i, why in sorted(damaged.items())
    ]

    def render(items: list[dict[str, Any]]) -> None:
        table = Table("id", "time", "tags", "database", "letta", "agents", "rows", "size")
        for r in items:
            if r.get("damaged"):
                table.add_row(r["short_id"], "[red]damaged: manifest unreadable[/]", "", "", "", "", "", "")
                continue
            table.add_row(
                r["short_id"],
                r["time"][:19],
                ",".join(r["tags"]),
                str(r["database"]),
                str(r["letta_release"]),
                str(r["agents"]),
                str(r["rows"]),
                _human_bytes(r["raw_bytes"]),
            )
        output.console.print(table)

    output.emit(rows, render)


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
    report = repository.check(read_data=read_data or subset is not None, subset_percent=subset)

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
