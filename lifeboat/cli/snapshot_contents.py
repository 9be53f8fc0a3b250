"""ls (a snapshot's tables and agents) and stats (raw, stored, deduplicated bytes; per table; the
largest agents): from manifests only, nothing is read from the packs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.agents import short_agent_id
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
from lifeboat.cli.repository import _human_bytes as human_bytes


@app.command("ls")
def ls(
    snapshot: Annotated[
        str,
        typer.Argument(
            metavar="SNAPSHOT",
            help="Snapshot id, unique prefix or 'latest' (the newest matching the filters).",
        ),
    ],
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
    long: LongOption = False,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
) -> None:
    """List a snapshot's tables (rows, sizes) and agents."""
    from lifeboat.ops.snapshot_contents import list_snapshot

    repository = open_repo(repo, password_file)
    listing = list_snapshot(repository.load_snapshot(snapshot, snapshot_filter(source, host, tag)))
    output.emit(listing, lambda r: _render_ls(r, long=long))


def _render_ls(r: Any, *, long: bool) -> None:
    console = output.console
    console.print(
        f"snapshot {r.id if long else r.short_id} of database {r.database or '?'} on {r.hostname}, "
        f"{output.local_time(r.time)}" + (f", tags {','.join(r.tags)}" if r.tags else "")
    )
    tables = output.table("table", "rows", "raw", "stored", whole=("table",))
    for column in tables.columns[1:]:
        column.justify = "right"
    for t in r.tables:
        tables.add_row(t.table, str(t.rows), human_bytes(t.raw_bytes), human_bytes(t.stored_bytes))
    console.print(tables)
    if r.agents is None:
        console.print("no agent catalog in this snapshot")
        return
    agents = output.table("id", "name", "messages", "passages", "blocks")
    for a in r.agents:
        agents.add_row(
            short_agent_id(a.id, long=long), a.name, str(a.messages), str(a.passages), str(a.blocks)
        )
    console.print(agents)
    console.print(
        f"{len(r.tables)} table(s), {sum(t.rows for t in r.tables)} row(s), {len(r.agents)} agent(s)"
    )


@app.command()
def stats(
    snapshot_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SNAPSHOT",
            help="Snapshots to count (id, prefix or 'latest'); default: every snapshot the filters match.",
            show_default=False,
        ),
    ] = None,
    source: SourceFilterOption = None,
    host: HostFilterOption = None,
    tag: TagFilterOption = None,
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
) -> None:
    """Raw, deduplicated and stored bytes of snapshots; per table; the largest agents."""
    from lifeboat.ops.snapshot_contents import repository_stats

    repository = open_repo(repo, password_file)
    flt = snapshot_filter(source, host, tag)
    # the chosen ids oldest first, then each snapshot read again as the sums reach it: one
    # manifest held at a time (a manifest that cannot be read is refused, as before)
    if snapshot_ids:
        ids = dict.fromkeys(repository.resolve_snapshot(ref, flt) for ref in snapshot_ids)
        headers = sorted((repository.read_snapshot(i).header() for i in ids), key=lambda s: (s.time, s.id))
        order = [header.id for header in headers]
    else:
        found, _damaged = repository.scan_snapshots(lambda s: s.id if flt.matches(s) else None, strict=True)
        order = [snapshot_id for snapshot_id in found if snapshot_id is not None]
    chosen = (repository.read_snapshot(snapshot_id) for snapshot_id in order)
    output.emit(repository_stats(repository, chosen), _render_stats)


def _render_stats(r: Any) -> None:
    console = output.console
    console.print(
        f"{len(r.snapshots)} snapshot(s): raw {human_bytes(r.raw_bytes)}, deduplicated "
        f"{human_bytes(r.deduplicated_bytes)}, stored {human_bytes(r.stored_bytes)} in {r.blobs} blob(s)"
    )
    console.print(f"repository: {human_bytes(r.repository_bytes)} in {r.packs} pack(s)")
    tables = output.table("table", "rows", "raw", "dedup", "stored", whole=("table",))
    for column in tables.columns[1:]:
        column.justify = "right"
    for t in r.tables[:15]:
        tables.add_row(
            t.table,
            str(t.rows),
            human_bytes(t.raw_bytes),
            human_bytes(t.deduplicated_bytes),
            human_bytes(t.stored_bytes),
        )
    console.print(tables)
    if len(r.tables) > 15:
        console.print(f"… and {len(r.tables) - 15} smaller table(s) (--json lists all)")
    if r.largest_agents:
        agents = output.table("id", "name", "rows", "messages", "passages")
        for a in r.largest_agents:
            agents.add_row(short_agent_id(a.id), a.name, str(a.rows), str(a.messages), str(a.passages))
        console.print(agents)
