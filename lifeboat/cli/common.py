"""Options shared by many commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RepoOption = Annotated[
    str | None,
    typer.Option(
        "--repo", "-r", help="Repository: a local path or s3://bucket/prefix (env LIFEBOAT_REPOSITORY)."
    ),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file", help="Read the repository passphrase from this file (env LIFEBOAT_PASSWORD_FILE)."
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="PostgreSQL DSN of the Letta database (default: LETTA_PG_URI or LETTA_PG_*)."),
]
SnapshotArgument = Annotated[str, typer.Argument(help="Snapshot id, unique prefix, or 'latest'.")]
SourceFilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        metavar="DATABASE",
        help="Only snapshots of this source database (repeatable: either).",
    ),
]
HostFilterOption = Annotated[
    list[str] | None,
    typer.Option("--host", metavar="HOST", help="Only snapshots taken on this host (repeatable: either)."),
]
TagFilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tag", metavar="TAG[,TAG]", help="Only snapshots with this tag (a,b = both; repeatable: either)."
    ),
]
SnapshotTagFilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--snapshot-tag",
        metavar="TAG[,TAG]",
        help="Only snapshots with this tag (a,b = both; repeatable: either).",
    ),
]
LongOption = Annotated[
    bool, typer.Option("--long", help="Full ids (and more columns) instead of what fits 80 columns.")
]
MetricsFileOption = Annotated[
    Path | None,
    typer.Option("--metrics-file", help="Write Prometheus textfile metrics here."),
]

TrustSchemaOption = Annotated[
    bool,
    typer.Option(
        "--trust-schema",
        help="Restore even when the snapshot's schema differs from lifeboat's record of its Letta revision.",
    ),
]
TrustUnencryptedOption = Annotated[
    bool,
    typer.Option(
        "--trust-unencrypted",
        help="Restore from an unencrypted repository (nothing in it is authenticated): you trust its contents.",
    ),
]


def open_repo(repo: str | None, password_file: Path | None):
    """Open the repository named by flag/env/config with the passphrase from flag/env/config/prompt.

    No passphrase from any source is a usage error (exit 2), not a wrong passphrase.
    """
    return start_opening_repo(repo, password_file, background=False)()


def start_opening_repo(repo: str | None, password_file: Path | None, *, background: bool = True):
    """:func:`open_repo` in two steps: the repository and passphrase are found now (a prompt runs
    here), the key is derived (Argon2id, ~0.13 s of CPU on two threads, the C code without the
    GIL) on a thread meanwhile, or taken from the derivation the entry point started
    (``early_key``); the callable returned waits for the repository or raises what opening it
    raised. The caller imports what its command needs in between."""
    from concurrent.futures import Future
    from threading import Thread

    from lifeboat import redact, settings
    from lifeboat.repo.repository import Repository

    config = settings.load_config()
    url = settings.repository_url(repo, config)
    secret = settings.passphrase(password_file, config=config)
    redact.register(secret)
    opened: Future[Repository] = Future()

    def derive() -> None:
        try:
            opened.set_result(Repository.open(url, secret))
        except BaseException as exc:  # handed to the caller, raised there
            opened.set_exception(exc)

    if background:
        Thread(target=derive, name="lifeboat-open-repository", daemon=True).start()
    else:
        derive()

    def result() -> Repository:
        from lifeboat.errors import UsageError, WrongPassphrase

        try:
            return opened.result()
        except WrongPassphrase as exc:
            if secret:
                raise
            raise UsageError(
                f"{exc}: use --password-file, LIFEBOAT_PASSWORD_FILE, LIFEBOAT_PASSWORD or 'password_file' "
                "in the config file"
            ) from None

    return result


def database_dsn(db: str | None) -> str:
    """The Letta database's DSN: ``--db``, else what the Letta server reads (see settings)."""
    from lifeboat import settings

    setting = settings.database_setting(db)
    return checked_dsn(setting.dsn, setting.source)


# describe_target(dsn) -> where that DSN came from, so a connection error can say it.
_DSN_SOURCES: dict[str, str] = {}


def _remember_source(dsn: str, source: str) -> None:
    from lifeboat.pg.connect import describe_target

    _DSN_SOURCES[describe_target(dsn)] = source


def with_dsn_source(message: str) -> str:
    """``message`` plus where the DSN it names came from (flag, which variable, config file,
    default), when it names one this command resolved."""
    for target, source in _DSN_SOURCES.items():
        if target in message:
            return f"{message} (connection settings from {source})"
    return message


def checked_dsn(dsn: str, source: str, *, need_database: bool = False) -> str:
    """``dsn`` if libpq can parse it (and it names a database when ``need_database``), else a
    usage error that does not repeat its password (libpq's parse errors quote the bad token)."""
    import psycopg
    from psycopg import conninfo

    from lifeboat import redact
    from lifeboat.errors import UsageError

    redact.register_url(dsn)
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        for secret in redact.passwords_in(dsn):
            reason = redact.redact_secret(reason, secret)
        raise UsageError(f"{source} is not a PostgreSQL connection string: {reason}") from None
    redact.register(str(params.get("password") or ""))
    _remember_source(dsn, source)
    if need_database and not params.get("dbname"):
        raise UsageError(f"{source} names no database (e.g. postgresql://user@host:5432/letta_restored)")
    return dsn


def snapshot_filter(
    source: list[str] | None = None, host: list[str] | None = None, tag: list[str] | None = None
):
    """The ``--source``/``--host``/``--tag`` filter (one definition: :mod:`lifeboat.ops.snapshot_filter`)."""
    from lifeboat.ops.snapshot_filter import snapshot_filter as build

    return build(sources=source or (), hosts=host or (), tags=tag or ())
