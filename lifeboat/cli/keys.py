"""key list/add/remove/passwd: the repository's passphrases (restic's ``key``; see lifeboat.repo.key_files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import PasswordFileOption, RepoOption, open_repo
from lifeboat.errors import UsageError

key_app = typer.Typer(
    help="Repository keys: one per passphrase (list, add, remove, passwd).", no_args_is_help=True
)
app.add_typer(key_app, name="key")

NewPasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--new-password-file",
        metavar="PATH",
        help="Read the new passphrase from this file (else a prompt asks twice).",
    ),
]


def _new_passphrase(file: Path | None) -> str:
    """The new passphrase: from ``file``, else typed twice at a terminal; never empty."""
    import getpass
    import sys

    from lifeboat import redact

    if file is not None:
        try:
            secret = file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read password file {file}: {exc.strerror}") from None
    elif sys.stdin.isatty():
        secret = getpass.getpass("new passphrase: ")
        if getpass.getpass("again: ") != secret:
            raise UsageError("the passphrases do not match")
    else:
        raise UsageError("give the new passphrase with --new-password-file (no terminal to ask)")
    if not secret:
        raise UsageError("the new passphrase is empty")
    redact.register(secret)
    return secret


@key_app.command("list")
def list_keys(repo: RepoOption = None, password_file: PasswordFileOption = None) -> None:
    """List the repository's keys; '*' marks the one the passphrase given opened."""
    from dataclasses import asdict

    from lifeboat.repo.key_files import list_keys as keys_of

    keys = [asdict(k) for k in keys_of(open_repo(repo, password_file))]

    def render(items: list[dict[str, Any]]) -> None:
        table = output.table(" ", "id", "created", "host", "state", whole=("id", "created"))
        for k in items:
            table.add_row(
                "*" if k["current"] else "",
                k["id"][:8],
                output.local_time(k["created"]),
                k["hostname"] or "",
                f"[red]damaged: {k['damaged']}[/]" if k["damaged"] else "",
            )
        output.console.print(table)

    output.emit(keys, render)


@key_app.command("add")
def add(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    new_password_file: NewPasswordFileOption = None,
) -> None:
    """Add a key for a new passphrase (the other passphrases keep working)."""
    from lifeboat.repo.key_files import add_key

    repository = open_repo(repo, password_file)  # a wrong passphrase fails before asking for a new one
    key_id = add_key(repository, _new_passphrase(new_password_file))
    output.emit({"added": key_id}, lambda r: output.console.print(f"added key {r['added'][:8]}"))


@key_app.command("remove")
def remove(
    key_id: Annotated[str, typer.Argument(metavar="KEY", help="Key id or unique prefix ('key list').")],
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
) -> None:
    """Remove a key. The key in use and the last key are refused."""
    from lifeboat.repo.key_files import remove_key

    removed = remove_key(open_repo(repo, password_file), key_id)
    output.emit({"removed": removed}, lambda r: output.console.print(f"removed key {r['removed'][:8]}"))


@key_app.command("passwd")
def passwd(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    new_password_file: NewPasswordFileOption = None,
) -> None:
    """Change the passphrase: a new key replaces the key in use."""
    from lifeboat.repo.key_files import change_passphrase

    repository = open_repo(repo, password_file)
    added, removed = change_passphrase(repository, _new_passphrase(new_password_file))
    output.emit(
        {"added": added, "removed": removed},
        lambda r: output.console.print(f"changed the passphrase: key {r['removed'][:8]} -> {r['added'][:8]}"),
    )
