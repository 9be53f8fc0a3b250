"""Doctor checks of the backup repository: readable, no damaged manifests, stale locks, RPO."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lifeboat.errors import LifeboatError
from lifeboat.ops.doctor.report import DoctorInputs, Run, Status


def repository_checks(run: Run, inputs: DoctorInputs, now: datetime) -> None:
    from lifeboat.repo.config import FORMAT_VERSION, UPGRADE_VERSION
    from lifeboat.repo.repository import Repository

    if not inputs.repository:
        run.add(
            "repository",
            Status.FAIL,
            "no repository configured",
            "pass --repo, set LIFEBOAT_REPOSITORY, or run lifeboat init",
        )
        run.add("repository.locks", Status.SKIP, "no repository")
        run.add("rpo", Status.SKIP, "no repository")
        return
    try:
        repo = Repository.open(inputs.repository, inputs.passphrase)
    except LifeboatError as exc:
        run.add("repository", Status.FAIL, str(exc), _repository_hint(exc))
        run.add("repository.locks", Status.SKIP, "repository not opened")
        run.add("rpo", Status.SKIP, "repository not opened")
        return
    mode = "encrypted" if repo.config.encrypted else "UNENCRYPTED"
    hint = None
    if not repo.config.encrypted:
        hint = "backups hold conversations and keys in clear: copy them into an encrypted repository"
    elif repo.config.version < UPGRADE_VERSION:  # format 2's ids are not worth a warning
        hint = "its config is not authenticated: run `lifeboat upgrade-repository` (docs/FORMAT.md §13)"
    run.add(
        "repository",
        Status.OK if hint is None else Status.WARN,
        f"{mode} repository {repo.backend.url}, format version {repo.config.version} (supported: {FORMAT_VERSION})",
        hint,
        version=repo.config.version,
        encrypted=repo.config.encrypted,
    )
    _locks_check(run, repo, now)
    _damaged_manifests_check(run, repo)
    _rpo_check(run, repo, inputs.max_age, now)


def _damaged_manifests_check(run: Run, repo: Any) -> None:
    from lifeboat.repo.repair import damage_marks

    _, unreadable = repo.scan_snapshots(lambda snapshot: None)
    damaged = {**damage_marks(repo), **unreadable}
    if damaged:
        run.add(
            "repository.snapshots",
            Status.FAIL,
            f"{len(damaged)} snapshot(s) damaged (manifest unreadable, or marked by `repair snapshots`): "
            f"{', '.join(s[:8] for s in sorted(damaged)[:5])}",
            "run `lifeboat check`, then `lifeboat repair snapshots`",
            damaged=sorted(damaged),
        )


def _repository_hint(exc: LifeboatError) -> str:
    from lifeboat.errors import CorruptRepository, RepositoryNotFound, WrongPassphrase

    if isinstance(exc, WrongPassphrase):
        return "check LIFEBOAT_PASSWORD / --password-file (the passphrase given at `lifeboat init`)"
    if isinstance(exc, RepositoryNotFound):
        return "create it with `lifeboat init --repo ...` or fix --repo / LIFEBOAT_REPOSITORY"
    if isinstance(exc, CorruptRepository):
        return "run `lifeboat check` to see what is damaged"
    return "check that the storage is reachable (path, bucket, credentials)"


def _locks_check(run: Run, repo: Any, now: datetime) -> None:
    locks = repo.list_locks()
    stale = [lock for lock in locks if lock.is_stale(now)]
    exclusive = [lock for lock in locks if lock.exclusive and lock not in stale]
    if stale:
        run.add(
            "repository.locks",
            Status.WARN,
            f"{len(stale)} stale lock(s): {'; '.join(lock.describe() for lock in stale[:3])}",
            "if no lifeboat process is running there, remove them with `lifeboat unlock`",
            locks=len(locks),
        )
    elif exclusive:
        run.add(
            "repository.locks",
            Status.WARN,
            f"locked exclusively: {exclusive[0].describe()} (a prune is running; backups will wait or fail)",
            "wait for it to finish; if that process is gone, `lifeboat unlock`",
            locks=len(locks),
        )
    else:
        message = (
            "not locked" if not locks else f"{len(locks)} shared lock(s): a backup or restore is running"
        )
        run.add("repository.locks", Status.OK, message, locks=len(locks))


def _rpo_check(run: Run, repo: Any, max_age: timedelta, now: datetime) -> None:
    # each snapshot's header and size, not the snapshots: one manifest is held at a time
    snapshots, _damaged = repo.scan_snapshots(lambda snapshot: (snapshot.header(), snapshot.raw_size()))
    if not snapshots:
        run.add(
            "rpo",
            Status.FAIL,
            "the repository has no snapshots",
            "run `lifeboat backup` and schedule it (docs/RECIPES.md)",
        )
        return
    newest, run.snapshot_bytes = snapshots[-1]
    age = now - newest.time
    text = f"newest snapshot {newest.short_id} is {_human_age(age)} old (threshold {_human_age(max_age)})"
    details = {
        "snapshot": newest.id,
        "age_seconds": round(age.total_seconds()),
        "max_age_seconds": round(max_age.total_seconds()),
    }
    if age > max_age:
        run.add(
            "rpo",
            Status.FAIL,
            text,
            "backups have stopped: check the scheduler (cron/systemd) and its logs, run `lifeboat backup`",
            **details,
        )
    else:
        run.add("rpo", Status.OK, text, **details)


def _human_age(delta: timedelta) -> str:
    """``5s``, ``12m``, ``26h``, ``3.5d``: days only from two days on, so 26h reads as 26h."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 2 * 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            size = 86400 if unit == "d" else size
            return f"{seconds / size:.1f}".rstrip("0").rstrip(".") + unit
    return f"{seconds}s"
