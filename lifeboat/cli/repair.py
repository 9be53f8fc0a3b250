"""``lifeboat repair index | snapshots``: restic's repair verbs (docs/RECIPES.md, lifeboat/repo/repair.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import PasswordFileOption, RepoOption, open_repo

repair_app = typer.Typer(help="Repair a damaged repository (see `lifeboat check`).", no_args_is_help=True)
app.add_typer(repair_app, name="repair")
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@repair_app.command("index")
def repair_index(
    repo: RepoOption = None, password_file: PasswordFileOption = None, json_output: JsonOption = False
) -> None:
    """Rebuild the index from the packs' own trailers and replace the old index files."""
    from lifeboat.repo.locks import RepositoryLock
    from lifeboat.repo.repair import repair_index as rebuild

    output.set_json(json_output or output.json_mode())
    repository = open_repo(repo, password_file)
    lock = RepositoryLock(
        repository.locks, exclusive=True
    ).acquire()  # not repo.lock(): the index may be unreadable
    try:
        lock.ensure_held()
        report = rebuild(repository)
    finally:
        lock.release()

    def render(r: Any) -> None:
        output.console.print(
            f"indexed {r.packs_indexed} pack(s) into {r.index_files_written} index file(s), "
            f"removed {r.index_files_removed} old index file(s)"
        )
        for pack_id, why in sorted(r.packs_unreadable.items()):
            output.console.print(
                f"[red]unreadable pack[/] {pack_id}: {why} (run `lifeboat repair snapshots`)"
            )

    output.emit(report, render)


@repair_app.command("snapshots")
def repair_snapshots(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    forget: Annotated[
        bool, typer.Option("--forget", help="Forget the damaged snapshots (default: list them, keep them).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """List snapshots that need missing or damaged data (tables, rows, agents lost) and mark them
    damaged; --forget removes them instead."""
    from lifeboat.ops.repair import agents_losing_rows
    from lifeboat.repo.locks import RepositoryLock
    from lifeboat.repo.repair import damaged_snapshots, forget_snapshots, mark_damaged

    output.set_json(json_output or output.json_mode())
    repository = open_repo(repo, password_file)
    lock = RepositoryLock(
        repository.locks, exclusive=True
    ).acquire()  # not repo.lock(): the index may be damaged
    try:
        damaged = damaged_snapshots(repository, repository.check())
        rows = [
            {**item.model_dump(mode="json"), "agents": agents_losing_rows(repository, item)}
            for item in damaged
        ]
        lock.ensure_held()
        if forget:
            forget_snapshots(repository, [item.snapshot for item in damaged])
        mark_damaged(repository, [] if forget else damaged)
    finally:
        lock.release()
    result = {"damaged": rows, "forgotten": [item.snapshot for item in damaged] if forget else []}

    def render(r: dict[str, Any]) -> None:
        for item in r["damaged"]:
            short = item["snapshot"][:8]
            if not item["readable"]:
                output.console.print(f"[red]{short}[/]: manifest unreadable ({item['reason']})")
                continue
            lost = ", ".join(f"{s['stream']} ({s['records_lost']} rows)" for s in item["streams"])
            output.console.print(f"[red]{short}[/]: loses {lost}")
            if item["agents"]:
                output.console.print(f"  agents that may lose rows: {', '.join(sorted(item['agents']))}")
        if forget:
            output.console.print(
                f"forgot {len(r['forgotten'])} damaged snapshot(s); `lifeboat prune` frees their data"
            )
        else:
            output.console.print(
                f"found {len(r['damaged'])} damaged snapshot(s): kept, marked damaged (`snapshots` shows it); "
                "`--forget` removes them"
            )

    output.emit(result, render)


@repair_app.command("packs")
def repair_packs(
    repo: RepoOption = None, password_file: PasswordFileOption = None, json_output: JsonOption = False
) -> None:
    """Salvage the readable blobs of damaged packs into new packs (reads every pack, like check --read-data)."""
    from lifeboat.repo.locks import RepositoryLock
    from lifeboat.repo.repair import salvage_packs

    output.set_json(json_output or output.json_mode())
    repository = open_repo(repo, password_file)
    lock = RepositoryLock(repository.locks, exclusive=True).acquire()
    try:
        report = repository.check(read_data=True)
        lock.ensure_held()
        result = salvage_packs(repository, report)
    finally:
        lock.release()

    def render(r: Any) -> None:
        output.console.print(
            f"{len(r.packs_damaged)} damaged pack(s): salvaged {r.blobs_salvaged} blob(s) into "
            f"{r.packs_written} new pack(s), {len(r.blobs_lost)} blob(s) lost"
            + ("; run `lifeboat repair snapshots`" if r.blobs_lost else "")
        )

    output.emit(result, render)


@repair_app.command("config")
def repair_config(
    repo: RepoOption = None, password_file: PasswordFileOption = None, json_output: JsonOption = False
) -> None:
    """Rewrite a damaged config from the copy of the settings sealed in a (format 2) key file."""
    from lifeboat import settings
    from lifeboat.repo.backends import open_backend
    from lifeboat.repo.repair import repair_config as rebuild

    output.set_json(json_output or output.json_mode())
    config = settings.load_config()
    backend = open_backend(settings.repository_url(repo, config))
    rebuilt = rebuild(backend, settings.passphrase(password_file, config=config))
    result = {"repository": backend.url, "version": rebuilt.version, "id": rebuilt.id}
    output.emit(
        result,
        lambda r: output.console.print(f"rewrote the config of {r['repository']} (format {r['version']})"),
    )


@repair_app.command("keys")
def repair_keys(
    repo: RepoOption = None, password_file: PasswordFileOption = None, json_output: JsonOption = False
) -> None:
    """Remove damaged key files (they open nothing; `check` names them as bad-key-file)."""
    from lifeboat.repo.repair import damaged_key_files, remove_key_files

    output.set_json(json_output or output.json_mode())
    repository = open_repo(repo, password_file)
    damaged = damaged_key_files(repository)
    remove_key_files(repository, damaged)
    output.emit(
        {"removed": damaged},
        lambda r: output.console.print(f"removed {len(r['removed'])} damaged key file(s)"),
    )
