"""Repository upkeep and readiness: forget, prune, copy, unlock, doctor."""

from __future__ import annotations

import os
from datetime import datetime
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
    open_repo,
    snapshot_filter,
)
from lifeboat.cli.progress import byte_progress
from lifeboat.errors import UsageError

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (docs/JSON.md).")]
RetryLockOption = Annotated[
    str,
    typer.Option(
        "--retry-lock", help="Wait this long for other lock holders (e.g. a running backup), e.g. 10m."
    ),
]
RepackOption = Annotated[
    float,
    typer.Option(
        "--repack-threshold",
        min=0.0,
        max=1.0,
        help="Repack a partly used pack when more than this share of it is unused (0-1).",
    ),
]


def _json(enabled: bool) -> None:
    if enabled:
        output.set_json(True)


def _seconds(text: str) -> float:
    from lifeboat.repo.retention import parse_duration

    return 0.0 if text in ("", "0") else parse_duration(text).total_seconds()


@app.command()
def forget(
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SNAPSHOT",
            help="Forget these snapshots (id, unique prefix or 'latest') instead of applying a policy.",
            show_default=False,
        ),
    ] = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    keep_last: Annotated[int, typer.Option("--keep-last", help="Keep the n newest snapshots.")] = 0,
    keep_hourly: Annotated[
        int, typer.Option("--keep-hourly", help="Keep the newest of each of n hours.")
    ] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily", help="Keep the newest of each of n days.")] = 0,
    keep_weekly: Annotated[
        int, typer.Option("--keep-weekly", help="Keep the newest of each of n ISO weeks.")
    ] = 0,
    keep_monthly: Annotated[
        int, typer.Option("--keep-monthly", help="Keep the newest of each of n months.")
    ] = 0,
    keep_yearly: Annotated[
        int, typer.Option("--keep-yearly", help="Keep the newest of each of n years.")
    ] = 0,
    keep_within: Annotated[
        str | None, typer.Option("--keep-within", help="Keep everything this close to the newest, e.g. 3d.")
    ] = None,
    keep_tag: Annotated[
        list[str] | None, typer.Option("--keep-tag", help="Keep snapshots with this tag.")
    ] = None,
    tag: TagFilterOption = None,
    host: HostFilterOption = None,
    source: SourceFilterOption = None,
    group_by: Annotated[
        str,
        typer.Option(
            "--group-by", help="Apply the policy per group: host, database, tags (comma list, or '')."
        ),
    ] = "host,database",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only show what would be forgotten.")
    ] = False,
    and_prune: Annotated[bool, typer.Option("--prune", help="Prune afterwards (free the space).")] = False,
    retry_lock: RetryLockOption = "0",
    repack_threshold: RepackOption = 0.2,
    json_output: JsonOption = False,
) -> None:
    """Forget snapshots by a retention policy (restic's rules; -1 = unlimited), or the snapshots named.
    Use --prune to free space."""
    from lifeboat.ops.retention import run_forget, run_forget_ids
    from lifeboat.repo.retention import Policy, parse_duration

    _json(json_output)
    policy = Policy(
        last=keep_last,
        hourly=keep_hourly,
        daily=keep_daily,
        weekly=keep_weekly,
        monthly=keep_monthly,
        yearly=keep_yearly,
        within=parse_duration(keep_within) if keep_within else None,
        tags=tuple(keep_tag or ()),
    )
    if snapshot_ids and not policy.empty():
        raise UsageError("name snapshots or give --keep-* rules, not both")
    repository = open_repo(repo, password_file)
    flt = snapshot_filter(source, host, tag)
    local_tz = datetime.now().astimezone().tzinfo
    assert local_tz is not None
    with byte_progress("prune") as bar:
        common = {
            "snapshot_filter": flt,
            "dry_run": dry_run,
            "and_prune": and_prune,
            "retry_lock": _seconds(retry_lock),
            "repack_threshold": repack_threshold,
            "progress": bar.advance,
        }
        if snapshot_ids:
            result = run_forget_ids(repository, snapshot_ids, **common)
        else:
            result = run_forget(
                repository,
                policy,
                tz=local_tz,
                group_by=[part for part in group_by.split(",") if part],
                **common,
            )

    def render(r: Any) -> None:
        for group in r.groups:
            title = ", ".join(f"{k} {v}" for k, v in group.key.items()) or "all snapshots"
            table = output.table(
                "id", "time", "tags", "decision", "reasons", title=title, title_justify="left"
            )
            for entry in group.snapshots:
                decision = "[green]keep[/]" if entry.keep else "[red]forget[/]"
                table.add_row(
                    entry.short_id,
                    output.local_time(entry.time),
                    ",".join(entry.tags),
                    decision,
                    "; ".join(entry.reasons),
                )
            output.console.print(table)
        verb = "would forget" if r.dry_run else "forgot"
        output.console.print(f"{verb} {len(r.removed)} snapshot(s), kept {len(r.kept)} ({r.policy})")
        if r.prune is not None:
            _render_prune(r.prune)

    output.emit(result, render)


@app.command()
def prune(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Only show what would be removed.")
    ] = False,
    retry_lock: RetryLockOption = "0",
    repack_threshold: RepackOption = 0.2,
    json_output: JsonOption = False,
) -> None:
    """Remove data no snapshot needs (exclusive lock; waits for or refuses a running backup)."""
    from lifeboat.ops.retention import run_prune

    _json(json_output)
    repository = open_repo(repo, password_file)
    with byte_progress("repack") as bar:
        stats = run_prune(
            repository,
            dry_run=dry_run,
            retry_lock=_seconds(retry_lock),
            repack_threshold=repack_threshold,
            progress=bar.advance,
        )
    output.emit(stats, _render_prune)


def _render_prune(stats: Any) -> None:
    verb = "would free" if stats.dry_run else "freed"
    output.console.print(
        f"{stats.packs_before} packs, {stats.snapshots} snapshots: {stats.packs_removed} unused and "
        f"{stats.packs_unindexed_removed} unindexed removed, {stats.packs_repacked} repacked into "
        f"{stats.packs_written}, {stats.packs_kept} kept; {verb} {stats.bytes_freed / 1e6:.2f} MB "
        f"(repository {stats.bytes_before / 1e6:.2f} -> {stats.bytes_after / 1e6:.2f} MB) in {stats.seconds:.1f} s"
    )


@app.command()
def copy(
    snapshots: Annotated[
        list[str] | None, typer.Argument(help="Snapshots to copy (ids, prefixes, 'latest'); default all.")
    ] = None,
    to: Annotated[
        str, typer.Option("--to", help="Target repository (it must exist: `lifeboat init` it first).")
    ] = "",
    to_password_file: Annotated[
        Path | None,
        typer.Option("--to-password-file", help="Target passphrase file (env LIFEBOAT_TO_PASSWORD[_FILE])."),
    ] = None,
    tag: TagFilterOption = None,
    host: HostFilterOption = None,
    source_db: SourceFilterOption = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Copy snapshots into a second repository (deduplicated; re-encrypted with its keys)."""
    from lifeboat.errors import UsageError
    from lifeboat.repo.copy import copy_snapshots
    from lifeboat.repo.repository import Repository

    _json(json_output)
    if not to:
        raise UsageError("copy needs --to REPOSITORY")
    source = open_repo(repo, password_file)
    target = Repository.open(to, _target_passphrase(to_password_file))
    flt = snapshot_filter(source_db, host, tag)
    # (id, raw size) of each matching snapshot, one manifest held at a time
    found, _damaged = source.scan_snapshots(
        lambda s: (s.id, s.raw_size()) if flt.matches(s) else None, strict=True
    )
    chosen = [item for item in found if item is not None]
    if snapshots:
        wanted = {source.resolve_snapshot(ref, flt) for ref in snapshots}
        chosen = [item for item in chosen if item[0] in wanted]
    with byte_progress("copy", total=sum(size for _id, size in chosen)) as bar:
        stats = copy_snapshots(
            source, target, [snapshot_id for snapshot_id, _size in chosen], progress=bar.advance
        )

    def render(s: Any) -> None:
        output.console.print(
            f"copied {len(s.copied)} snapshot(s) to {s.target} ({len(s.skipped)} already there): "
            f"{s.blobs_new} new blobs, {s.bytes_added / 1e6:.2f} MB added, {s.blobs_deduplicated} deduplicated, "
            f"in {s.seconds:.1f} s"
        )

    output.emit(stats, render)


def _target_passphrase(file: Path | None) -> str | None:
    from lifeboat.errors import UsageError

    file = file or (
        Path(os.environ["LIFEBOAT_TO_PASSWORD_FILE"]) if os.environ.get("LIFEBOAT_TO_PASSWORD_FILE") else None
    )
    if file is not None:
        try:
            return file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read password file {file}: {exc.strerror}") from exc
    if "LIFEBOAT_TO_PASSWORD" in os.environ:
        return os.environ["LIFEBOAT_TO_PASSWORD"]
    import sys

    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("target repository passphrase: ")
    return None


@app.command()
def unlock(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    remove_all: Annotated[
        bool,
        typer.Option("--remove-all", help="Remove every lock, not only stale ones (be sure nothing runs)."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Remove stale locks (of lifeboat processes that died); --remove-all removes every lock."""
    _json(json_output)
    repository = open_repo(repo, password_file)
    removed = repository.unlock(force=remove_all)
    remaining = repository.list_locks()
    result = {
        "removed": [_lock_json(lock) for lock in removed],
        "remaining": [_lock_json(lock) for lock in remaining],
    }

    def render(r: dict[str, Any]) -> None:
        output.console.print(f"removed {len(r['removed'])} lock(s)")
        for lock in remaining:
            output.console.print(f"still held: {lock.describe()}")

    output.emit(result, render)


def _lock_json(lock: Any) -> dict[str, Any]:
    return {
        "id": lock.id,
        "exclusive": lock.exclusive,
        "hostname": lock.hostname,
        "pid": lock.pid,
        "time": lock.time.isoformat(),
        "created": lock.created.isoformat(),
        "readable": lock.readable,
    }


_STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@app.command()
def doctor(
    db: DbOption = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="Admin DSN that restores and drills would use (checks its privileges)."
        ),
    ] = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    max_age: Annotated[
        str,
        typer.Option("--max-age", help="Fail when the newest snapshot is older than this (RPO), e.g. 26h."),
    ] = "26h",
    json_output: JsonOption = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="LETTA_BASE_URL",
            help="The running Letta server's URL: report its version and warn when it disagrees with the schema.",
        ),
    ] = None,
) -> None:
    """Check that backups and restores would work here: database, privileges, pgvector, Letta
    revision, Redis, repository, locks, disk, newest snapshot age. Exit 3 when a check fails."""
    from lifeboat import redact, settings
    from lifeboat.errors import LifeboatError, VerificationFailed
    from lifeboat.ops.doctor import DoctorInputs, run_doctor
    from lifeboat.repo.retention import parse_duration

    _json(json_output)
    config = settings.load_config()
    try:
        repository: str | None = settings.repository_url(repo, config)
    except LifeboatError:
        repository = None
    secret = settings.passphrase(password_file, config=config) if repository else None
    redact.register(secret)  # doctor reports a bad DSN as a failed check: its password by value too
    inputs = DoctorInputs(
        dsn=settings.database_setting(db, config=config).dsn,
        repository=repository,
        passphrase=secret,
        redis=settings.letta_redis(),
        target_dsn=settings.normalize_dsn(target) if target else None,
        max_age=parse_duration(max_age),
        sources=settings.setting_sources(db, repo, password_file, config),
        server_url=server,
    )
    report = run_doctor(inputs)

    def render(r: Any) -> None:
        for check in r.checks:
            style = _STATUS_STYLE[check.status.value]
            output.console.print(f"[{style}]{check.status.value:>4}[/]  {check.name:<28} {check.message}")
            if check.hint and check.status.value in ("fail", "warn"):
                output.console.print(f"      {'':<28} [dim]fix:[/] {check.hint}")
        s = r.summary
        output.console.print(f"{s['ok']} ok, {s['warn']} warning(s), {s['fail']} failed, {s['skip']} skipped")

    output.emit(report, render)
    if not report.ok:
        failed = [c.name for c in report.checks if c.status.value == "fail"]
        raise VerificationFailed(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}")
