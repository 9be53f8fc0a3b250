"""Opening the repository while the command imports what it needs: the key is derived on a
thread, and what opening raises is raised where the command waits for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import PASSPHRASE, small_repo

from lifeboat.cli.common import start_opening_repo
from lifeboat.errors import UsageError, WrongPassphrase


def test_the_repository_opens_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = small_repo(tmp_path / "repo")
    secret = tmp_path / "secret"
    secret.write_text(PASSPHRASE + "\n")
    monkeypatch.delenv("LIFEBOAT_PASSWORD", raising=False)
    opened = start_opening_repo(str(tmp_path / "repo"), secret)()
    assert opened.config.id == created.config.id


def test_a_wrong_passphrase_is_raised_where_the_repository_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_repo(tmp_path / "repo")
    monkeypatch.setenv("LIFEBOAT_PASSWORD", "not the passphrase")
    opening = start_opening_repo(str(tmp_path / "repo"), None)
    with pytest.raises(WrongPassphrase):
        opening()
    monkeypatch.delenv("LIFEBOAT_PASSWORD")
    with pytest.raises(UsageError):
        start_opening_repo(str(tmp_path / "repo"), None)()
