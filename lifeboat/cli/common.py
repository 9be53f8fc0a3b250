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
    """Open the repository named by flag/env/config with the passphrase from flag/env/config/prompt."""
    from lifeboat import settings
    from lifeboat.repo.repository import Repository

    config = settings.load_config()
    url = settings.repository_url(repo, config)
    return Repository.open(url, settings.passphrase(password_file, config=config))


def database_dsn(db: str | None) -> str:
    from lifeboat import settings

    return settings.database_setting(db).dsn
