"""The snapshot filter of every command that picks snapshots: ``--source``, ``--host``, ``--tag``.

The repository layer matches hostnames and tags (:mod:`lifeboat.repo.filters`); the source
database is recorded in a database snapshot's ``source`` document, which only this layer reads,
so it is added here as a condition. Commands build their filter with :func:`snapshot_filter` and
nothing else decides what "matches" means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from pydantic import BaseModel

from lifeboat.errors import SnapshotNotFound
from lifeboat.ops import snapshot_catalog
from lifeboat.ops import snapshot_layout as layout
from lifeboat.repo.filters import NO_FILTER, Condition, SnapshotFilter
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import LATEST, Repository


def source_database(snapshot: Snapshot) -> str | None:
    """The name of the database the snapshot was read from (its ``source`` document), if recorded."""
    return layout.source_document(snapshot).database


def snapshot_filter(
    *, sources: Sequence[str] = (), hosts: Sequence[str] = (), tags: Sequence[str] = ()
) -> SnapshotFilter:
    """restic's filter (repeat ``hosts``/``sources`` = either; a tag entry ``a,b`` needs both) plus the
    source database."""
    conditions: tuple[Condition, ...] = ()
    wanted = tuple(dict.fromkeys(source for source in sources if source))
    if wanted:
        conditions = (
            Condition(
                " ".join(f"--source {name}" for name in wanted),
                lambda snapshot: source_database(snapshot) in wanted,
            ),
        )
    built = SnapshotFilter(
        hosts=tuple(host for host in hosts if host), tags=tuple(tags), conditions=conditions
    )
    return NO_FILTER if built.empty() else built


class ChosenSnapshot(BaseModel):
    """The snapshot a command picked and why (printed, and part of ``--json`` output)."""

    id: str
    short_id: str
    time: str
    source_database: str | None
    hostname: str
    chosen_by: str  # e.g. "named", "newest of --source letta"


def choose(
    repo: Repository, ref: str, flt: SnapshotFilter = NO_FILTER, read: Callable[[str], Snapshot] | None = None
) -> tuple[Snapshot, ChosenSnapshot]:
    """Resolve ``ref`` (id, prefix or ``latest``) under ``flt``; returns the snapshot and how it was
    chosen (``read``: how a manifest is read, see ``Repository.load_snapshot``)."""
    snapshot = repo.load_snapshot(ref, flt, read=read)
    return snapshot, _chosen(snapshot, "named" if ref != LATEST else _newest_of(flt))


def choose_for_database(
    repo: Repository,
    ref: str | None,
    dsn: str,
    *,
    sources: Sequence[str] = (),
    hosts: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> tuple[Snapshot, ChosenSnapshot]:
    """The snapshot an agent restore into ``dsn`` uses: ``ref`` if given (``latest`` = newest matching
    the filter); without one, the newest snapshot of the target database itself (the server's
    ``current_database()``) — or of ``sources`` when given. The newest is chosen from each
    manifest's header (:func:`snapshot_catalog.read_header`); the chosen one is read with its agent
    catalog set aside (:func:`snapshot_catalog.read_snapshot`): a restore looks up a few agents in it."""
    if ref is not None or sources:
        flt = snapshot_filter(sources=sources, hosts=hosts, tags=tags)
        if ref not in (None, LATEST):
            return choose(repo, ref, flt, partial(snapshot_catalog.read_snapshot, repo))
        snapshot = _newest(repo, flt)
        return snapshot, _chosen(snapshot, _newest_of(flt))
    database = target_database(dsn)
    flt = snapshot_filter(sources=[database], hosts=hosts, tags=tags)
    try:
        snapshot = _newest(repo, flt)
    except SnapshotNotFound:
        raise SnapshotNotFound(
            f"no snapshot of the target database {database!r} matches {flt.describe()}: name a snapshot "
            "or choose a source database with --source"
        ) from None
    return snapshot, _chosen(snapshot, f"newest of the target database ({flt.describe()})")


def _newest_of(flt: SnapshotFilter) -> str:
    return "newest" if flt.empty() else f"newest of {flt.describe()}"


def _newest(repo: Repository, flt: SnapshotFilter) -> Snapshot:
    header = repo.load_snapshot(LATEST, flt, read=partial(snapshot_catalog.read_header, repo))
    return snapshot_catalog.read_snapshot(repo, header.id)


def target_database(dsn: str) -> str:
    """The name of the database ``dsn`` connects to, as the server reports it."""
    from lifeboat import pg

    with pg.connection(dsn) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _chosen(snapshot: Snapshot, how: str) -> ChosenSnapshot:
    return ChosenSnapshot(
        id=snapshot.id,
        short_id=snapshot.short_id,
        time=snapshot.time.isoformat(),
        source_database=source_database(snapshot),
        hostname=snapshot.hostname,
        chosen_by=how,
    )
