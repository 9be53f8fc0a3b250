"""``lifeboat upgrade-repository``: rewrite a format-1 repository as format 2 (docs/FORMAT.md §13)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lifeboat.cli import output
from lifeboat.cli.app import app
from lifeboat.cli.common import PasswordFileOption, RepoOption


@app.command("upgrade-repository")
def upgrade_repository(
    repo: RepoOption = None,
    password_file: PasswordFileOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Upgrade the repository format in place (authenticated config, name-bound index files)."""
    from lifeboat import settings
    from lifeboat.repo.repository import Repository
    from lifeboat.repo.upgrade import upgrade_repository as upgrade

    if json_output:
        output.set_json(True)
    config = settings.load_config()
    url = settings.repository_url(repo, config)
    passphrase = settings.passphrase(password_file, config=config)
    report = upgrade(Repository.open(url, passphrase), passphrase)

    def render(r: Any) -> None:
        if r.from_version == r.to_version and not r.index_files_rewritten and not r.key_file_replaced:
            output.console.print(f"repository {r.repository} is already format version {r.to_version}")
            if r.note:
                output.console.print(r.note)
            return
        output.console.print(
            f"upgraded {r.repository} from format version {r.from_version} to {r.to_version} "
            f"({r.index_files_rewritten} index file(s) rewritten)"
        )
        if r.key_files_not_upgraded:
            output.console.print(
                f"{len(r.key_files_not_upgraded)} other key file(s) keep format 1 (their passphrases were "
                "not given); run upgrade-repository with each of them too"
            )
        if r.note:
            output.console.print(r.note)

    output.emit(report, render)
