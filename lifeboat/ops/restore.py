"""Full restore: a snapshot into a new database, built under a temporary name and switched in last.

Order: database settings (search_path), pre-data DDL (schemas, the ``vector`` extension inside
its schema, types, sequences, tables), parallel COPY, post-data DDL (constraints, indexes, FKs),
sequence values (``message_seq_id``), ANALYZE; then the switch (rename) and Redis invalidation.
A crash before the switch leaves only a database with a temporary name and a comment saying it
is incomplete; the next restore of the same target removes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from lifeboat import pg
from lifeboat.errors import CorruptBlob, CorruptRepository, UnsafeRestore, note_rolled_back
from lifeboat.letta import schema_trust
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.backup import run_backup
from lifeboat.ops.redis import invalidate_after_restore
from lifeboat.ops.restore_partial import PartialLoss, assess_loss, relax_foreign_keys, validate_foreign_keys
from lifeboat.ops.restore_target import inspect_replacement
from lifeboat.pg.models import DatabaseSchema
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository
from lifeboat.settings import RedisTarget

INCOMPLETE_COMMENT = "lifeboat: incomplete restore of snapshot {snapshot} into {target}; safe to drop"
Progress = Callable[[int], None]
Notify = Callable[[str], None]  # one line for the operator, before the fact


@dataclass(frozen=True)
class Trust:
    """What the operator vouches for (each a CLI flag): see :func:`check_trust` and
    :mod:`lifeboat.ops.restore_target`."""

    schema: bool = False  # --trust-schema: a schema that differs from its revision's record
    unencrypted: bool = False  # --trust-unencrypted: a repository that authenticates nothing
    other_deployment: bool = False  # --other-deployment: replace a database holding another one


@dataclass
class RestoreResult:
    snapshot: Snapshot
    database: str
    dsn: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    safety_snapshot: str | None = None
    replaced_existing: bool = False
    redis_keys_removed: int | None = None
    warnings: list[str] = field(default_factory=list)
    sessions_ended: list[dict[str, Any]] = field(default_factory=list)  # on a replaced target
    partial: PartialLoss | None = None  # restore --partial of a damaged snapshot: what it lost

    def summary(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "database": self.database,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "safety_snapshot": self.safety_snapshot,
            "replaced_existing": self.replaced_existing,
            "redis_keys_removed": self.redis_keys_removed,
            "warnings": self.warnings,
            "sessions_ended": self.sessions_ended,
            "partial": self.partial.summary() if self.partial is not None else None,
        }


def check_trust(
    repo: Repository,
    snapshot: Snapshot,
    schema: DatabaseSchema,
    *,
    trust_schema: bool,
    trust_unencrypted: bool,
) -> list[str]:
    """Refuse a snapshot whose schema document could run something else than the schema it describes.

    Nothing touched a database yet. Returns warnings (what the operator's trust flags let through).
    * an unencrypted repository authenticates nothing: anyone who could write its storage could
      have planted the snapshot, so it restores only with ``trust_unencrypted``;
    * every stored SQL fragment must have the shape of its kind (no flag overrides this);
    * a snapshot of a Letta revision lifeboat has a record of must match that record, unless
      ``trust_schema``.
    """
    warnings: list[str] = []
    if not repo.config.encrypted:
        if not trust_unencrypted:
            raise UnsafeRestore(
                "the repository is not encrypted, so nothing in it is authenticated: anyone who could write "
                "its storage could have planted this snapshot; pass --trust-unencrypted if you trust its contents"
            )
        warnings.append("restored from an unencrypted repository (its contents were trusted as asked)")
    try:
        pg.check_schema(schema)
    except pg.UnsafeFragment as exc:
        raise CorruptRepository(
            f"snapshot {snapshot.short_id}: the schema document is not what lifeboat writes ({exc}); "
            "refused, nothing was executed"
        ) from None
    revision = layout.source_document(snapshot).letta_revision
    record = schema_trust.record_for(revision)
    if record is None:
        warnings.append(
            f"lifeboat has no record of Letta revision {revision or '(none)'}: the schema document was "
            "checked for shape only"
        )
        return warnings
    differences = schema_trust.schema_differences(schema, record)
    if differences and not trust_schema:
        raise UnsafeRestore(
            f"snapshot {snapshot.short_id}'s schema differs from lifeboat's record of Letta revision "
            f"{revision}: {schema_trust.summarize(differences)}; nothing was executed "
            "(pass --trust-schema to restore it anyway)"
        )
    if differences:
        warnings.append(
            f"schema differs from the record of {revision} (trusted as asked): "
            f"{schema_trust.summarize(differences)}"
        )
    return warnings


def preflight(repo: Repository, snapshot: Snapshot, *, read_data: bool = False) -> None:
    """Refuse before touching anything when a blob the snapshot needs is missing or truncated.

    Without ``read_data`` (the default) this reads no blob: every blob the snapshot needs must be
    in the index and its pack stored at the indexed size (one size query per pack). A blob damaged
    inside an intact-sized pack is found by the load itself, which authenticates every blob it
    reads; :func:`run_restore` then drops the temporary database, so nothing is left behind. With
    ``read_data`` every needed blob is also read and verified first (a second full decrypt and
    decompress pass: about a third of a full restore's time on 2 cores).
    """
    report = repo.verify_snapshot(snapshot, read_data=read_data)
    if not report.ok:
        first = report.errors[0]
        blobs = f" (blob {first.blob_ids[0]})" if first.blob_ids else ""
        raise CorruptRepository(
            f"snapshot {snapshot.short_id} cannot be restored: {first.message}{blobs}; "
            f"{len(report.errors)} problem(s) in all, nothing was changed (run 'lifeboat check --read-data')"
        )


def _partial_loss(repo: Repository, snapshot: Snapshot) -> PartialLoss | None:
    """Read and verify every blob; what a damaged snapshot lost (``None``: nothing)."""
    report = repo.verify_snapshot(snapshot, read_data=True)
    return None if report.ok else assess_loss(repo, snapshot, report)


def run_restore(
    repo: Repository,
    snapshot_ref: str,
    target_dsn: str,
    *,
    force: bool = False,
    jobs: int = 2,
    redis: RedisTarget | None = None,
    progress: Progress | None = None,
    safety_snapshot: bool = True,
    verify_first: bool = False,
    prepare: Callable[[str], None] | None = None,
    trust: Trust = Trust(),
    notify: Notify | None = None,
    partial: bool = False,
) -> RestoreResult:
    """Restore ``snapshot_ref`` as the database named in ``target_dsn`` (connect as an admin role).

    An existing target is replaced only with ``force``, and only after a safety snapshot of it.
    ``prepare(temp_dsn)`` runs on the finished temporary database before the switch (``restore
    --upgrade`` runs Letta's migrations there); if it raises, the temporary database is dropped.
    The snapshot must pass :func:`check_trust` first (``trust.schema``, ``trust.unencrypted``).
    Every blob is verified once, as it is loaded (:func:`preflight` checks only index entries and
    pack sizes up front, unless ``verify_first`` reads every blob first); a damaged blob found
    mid-load raises ``CorruptRepository`` and the temporary database is dropped.
    A target holding another deployment is refused unless ``trust.other_deployment``; ``notify`` is told
    which sessions on the target the switch will end (:mod:`lifeboat.ops.restore_target`).
    With ``partial``, a damaged snapshot is restored without its lost blobs instead of refused
    (:mod:`lifeboat.ops.restore_partial`); ``RestoreResult.partial`` says what was lost.
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    with repo.lock():
        snapshot = repo.load_snapshot(snapshot_ref)
        schema = layout.schema_document(snapshot)
        trust_warnings = check_trust(
            repo, snapshot, schema, trust_schema=trust.schema, trust_unencrypted=trust.unencrypted
        )
        phase = time.monotonic()
        loss = _partial_loss(repo, snapshot) if partial else None
        if not partial:
            preflight(repo, snapshot, read_data=verify_first)
        build_schema, relaxed = relax_foreign_keys(schema, loss) if loss else (schema, [])
        timings["verify"] = time.monotonic() - phase
        target = _target_database(target_dsn)
        admin_dsn = pg.with_database(target_dsn, "postgres")
        with pg.connect(admin_dsn) as admin:
            exists = pg.database_exists(admin, target)
            if exists and not force:
                raise UnsafeRestore(
                    f"database {target} already exists; restore into a new name, or pass --force "
                    "(a safety snapshot of it is taken first)"
                )
            replacement = None
            if exists:
                replacement = inspect_replacement(
                    admin, target_dsn, target, snapshot, other_deployment=trust.other_deployment
                )
                if notify:
                    notify(replacement.sessions_line("the switch will end"))
            _drop_leftovers(admin, target)
            warnings = pg.check_target_version(admin, schema)
            if replacement is not None and replacement.other_deployment:
                warnings.append(f"replaced database {target} although {replacement.other_deployment}")
        temp = pg.temporary_database_name(target)
        temp_dsn = pg.with_database(target_dsn, temp)
        try:  # from here until the switch, any failure or interruption drops the temporary database
            with pg.connect(admin_dsn) as admin:
                _create_target(admin, schema, temp, snapshot, target)
            report = _build_verified(repo, snapshot, build_schema, temp_dsn, jobs, progress, timings, loss)
            if loss is not None:
                with pg.connect(temp_dsn) as conn:
                    loss.foreign_keys_not_valid = validate_foreign_keys(conn, relaxed)
            if prepare is not None:
                prepare(temp_dsn)
            safety_id = None
            if exists and safety_snapshot:
                phase = time.monotonic()
                safety = run_backup(
                    repo,
                    target_dsn,
                    tags=["safety", f"before-restore-{snapshot.short_id}"],
                    jobs=jobs,
                    any_database=True,  # whatever the target holds is saved before it is replaced
                )
                safety_id = safety.snapshot.id
                timings["safety_snapshot"] = time.monotonic() - phase
            ended: list[pg.Session] = []
            if replacement is not None:
                with pg.connect(admin_dsn) as admin:
                    replacement.sessions = ended = pg.list_sessions(admin, target)
                if notify:
                    notify(replacement.sessions_line("ending"))
            _switch(admin_dsn, temp, target, exists)
        except BaseException as exc:
            _drop_temporary(admin_dsn, temp, target, exc)
            raise
    removed = invalidate_after_restore(redis)
    return RestoreResult(
        snapshot=snapshot,
        database=target,
        dsn=target_dsn,
        seconds=time.monotonic() - started,
        timings=timings,
        safety_snapshot=safety_id,
        replaced_existing=exists,
        redis_keys_removed=removed,
        warnings=trust_warnings + warnings + report.warnings + report.skipped,
        sessions_ended=[asdict(session) for session in ended],
        partial=loss,
    )


def _target_database(dsn: str) -> str:
    name = psycopg.conninfo.conninfo_to_dict(dsn).get("dbname")
    if not name:
        raise UnsafeRestore("the target DSN names no database")
    return str(name)


def _create_target(
    admin: psycopg.Connection, schema: DatabaseSchema, temp: str, snapshot: Snapshot, target: str
) -> None:
    owner = schema.database.owner if pg.role_exists(admin, schema.database.owner) else None
    pg.create_database(admin, temp, owner=owner)
    comment = INCOMPLETE_COMMENT.format(snapshot=snapshot.short_id, target=target)
    admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(temp), sql.Literal(comment)))
    pg.apply_database_settings(admin, schema, temp)


def _build_verified(
    repo: Repository,
    snapshot: Snapshot,
    schema: DatabaseSchema,
    dsn: str,
    jobs: int,
    progress: Progress | None,
    timings: dict[str, float],
    loss: PartialLoss | None = None,
) -> pg.ApplyReport:
    """:func:`_build`, with a blob that fails its check during the load named like :func:`preflight` does."""
    try:
        return _build(repo, snapshot, schema, dsn, jobs, progress, timings, loss)
    except CorruptBlob as exc:
        raise CorruptRepository(
            f"snapshot {snapshot.short_id} cannot be restored: {exc} (found while loading); "
            "run 'lifeboat check --read-data'"
        ) from exc


def _build(
    repo: Repository,
    snapshot: Snapshot,
    schema: DatabaseSchema,
    dsn: str,
    jobs: int,
    progress: Progress | None,
    timings: dict[str, float],
    loss: PartialLoss | None = None,
) -> pg.ApplyReport:
    phase = time.monotonic()
    report = pg.ApplyReport()
    with pg.connect(dsn) as conn:
        pg.apply_pre_data(conn, schema, report)
        pg.pause_autovacuum(conn, schema.tables)  # until the end of the build (resume_autovacuum)
    timings["schema"] = time.monotonic() - phase

    phase = time.monotonic()
    streams = layout.table_streams(snapshot)
    tables = [t for t in schema.tables if (t.schema_, t.name) in streams]
    last_load_done = [phase]

    def load(conn: psycopg.Connection, part: pg.TablePart) -> int:
        table = part.table
        stream, attributes = streams[(table.schema_, table.name)]
        if loss is not None:  # a partial restore leaves the lost (record-aligned) blobs out
            wanted = (ref.id for ref in stream.blobs if ref.id not in loss.lost_blobs)
            chunks = _counting((data for _, data in repo.read_blobs(wanted, trust_aead=True)), progress)
        else:
            chunks = _counting(repo.iter_stream_data(stream, trust_aead=True), progress)  # one check per blob
        rows = pg.copy_in(
            conn, table.qualified, attributes.columns, chunks, freeze=part.whole, binary=attributes.binary
        )
        last_load_done[0] = max(last_load_done[0], time.monotonic())
        return rows

    # One pool for loads, index builds, constraints and ANALYZE: each table's indexes start as
    # soon as its own data is in, while bigger tables are still loading.
    pg.load_and_apply_post_data(dsn, schema, load, tables=tables, jobs=jobs, report=report)
    with pg.connect(dsn) as conn:
        pg.apply_sequence_values(conn, schema)
        pg.resume_autovacuum(conn, schema.tables)
    finished = time.monotonic()
    timings["data"] = last_load_done[0] - phase
    timings["indexes"] = finished - last_load_done[0]  # what remained after the last load, ANALYZE included
    timings["analyze"] = 0.0
    return report


def _counting(chunks: Any, progress: Progress | None) -> Any:
    for chunk in chunks:
        if progress:
            progress(len(chunk))
        yield chunk


def _switch(admin_dsn: str, temp: str, target: str, exists: bool) -> None:
    """Rename the finished database into place (one transaction when replacing), then drop the old one."""
    with pg.connect(admin_dsn) as admin:
        previous = None
        if exists:
            previous = pg.temporary_database_name(target, "replaced")
            pg.swap_databases(admin, target, temp, previous)
        else:
            pg.rename_database(admin, temp, target)
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(target)))
        if previous:
            pg.drop_database(admin, previous)


def _drop_temporary(admin_dsn: str, temp: str, target: str, exc: BaseException) -> None:
    """Drop the half-built database (a no-op once the switch renamed it into place)."""
    with pg.connect(admin_dsn) as admin:
        if pg.database_exists(admin, temp):
            pg.drop_database(admin, temp)
            note_rolled_back(exc, f"temporary database {temp} dropped ({target} untouched)")


def _drop_leftovers(admin: psycopg.Connection, target: str) -> None:
    """Remove databases an interrupted restore of the same target left behind.

    They are recognised by their temporary name (only the final rename gives a database its real
    name) or by the comment set right after creation. One still in use (another restore of the
    same target running now) is left alone: DROP without FORCE refuses it.
    """
    prefix = pg.temporary_name_prefix(target)
    rows = admin.execute(
        "SELECT d.datname FROM pg_database d "
        "WHERE starts_with(d.datname, %s) OR shobj_description(d.oid, 'pg_database') LIKE %s",
        (prefix, INCOMPLETE_COMMENT.format(snapshot="%", target=target)),
    ).fetchall()
    for (name,) in rows:
        with contextlib.suppress(psycopg.errors.ObjectInUse):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
