"""key list/add/remove/passwd through the CLI: several passphrases for one repository, the key in
use and the last key cannot be removed, a wrong passphrase still exits 12."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import PASSPHRASE, cli, new_repo

from lifeboat.errors import Interrupted, WrongPassphrase, rolled_back
from lifeboat.repo.backends import LocalBackend
from lifeboat.repo.key_files import change_passphrase
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository

SECOND = "a second, different passphrase"
THIRD = "and a third one"


def _as(passphrase: str) -> dict[str, str]:
    return {"LIFEBOAT_PASSWORD": passphrase}


def _keys(repo: Path, passphrase: str) -> list[dict[str, object]]:
    result = cli("--json", "key", "list", "--repo", str(repo), env=_as(passphrase))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _opens(repo: Path, passphrase: str) -> int:
    return cli("snapshots", "--repo", str(repo), env=_as(passphrase)).returncode


def test_add_remove_passwd(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    snapshot = Snapshot(tags=["kept"])
    new_repo(repo).save_snapshot(snapshot)
    (tmp_path / "second").write_text(SECOND + "\n")
    (tmp_path / "third").write_text(THIRD)
    [first] = _keys(repo, PASSPHRASE)
    assert first["current"] is True

    added = cli("key", "add", "--repo", str(repo), "--new-password-file", str(tmp_path / "second"))
    assert added.returncode == 0, added.stderr
    assert _opens(repo, PASSPHRASE) == 0 and _opens(repo, SECOND) == 0
    keys = _keys(repo, SECOND)
    assert len(keys) == 2 and [k["current"] for k in keys if k["id"] == first["id"]] == [False]

    in_use = cli("key", "remove", "--repo", str(repo), str(first["id"])[:8])  # opened by the first key
    assert in_use.returncode == 2 and "key in use" in in_use.stderr and in_use.stderr.count("\n") == 1
    removed = cli("key", "remove", "--repo", str(repo), str(first["id"])[:8], env=_as(SECOND))
    assert removed.returncode == 0, removed.stderr
    wrong = cli("snapshots", "--repo", str(repo), env=_as(PASSPHRASE))
    assert wrong.returncode == 12 and wrong.stderr.count("\n") == 1
    assert _opens(repo, SECOND) == 0
    [only] = _keys(repo, SECOND)
    last = cli("key", "remove", "--repo", str(repo), str(only["id"]), env=_as(SECOND))
    assert last.returncode == 2 and "key in use" in last.stderr  # also the last key

    changed = cli(
        "key", "passwd", "--repo", str(repo), "--new-password-file", str(tmp_path / "third"), env=_as(SECOND)
    )
    assert changed.returncode == 0, changed.stderr
    assert _opens(repo, SECOND) == 12 and _opens(repo, THIRD) == 0
    assert Repository.open(repo, THIRD).read_snapshot(snapshot.id).tags == ["kept"]  # data untouched
    assert len(_keys(repo, THIRD)) == 1
    assert cli("key", "passwd", "--repo", str(repo), env=_as("not it")).returncode == 12

    for args in (["remove", "ffff"], ["add", "--new-password-file", str(tmp_path / "missing")]):
        bad = cli("key", *args, "--repo", str(repo), env=_as(THIRD))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    (tmp_path / "empty").write_text("")
    empty = cli(
        "key", "add", "--repo", str(repo), "--new-password-file", str(tmp_path / "empty"), env=_as(THIRD)
    )
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert len(_keys(repo, THIRD)) == 1


def test_an_interrupted_passwd_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path / "repo")
    before = sorted(info.name for info in repo.backend.list("keys/"))
    real_delete = LocalBackend.delete
    calls: list[str] = []

    def interrupted_once(self: LocalBackend, name: str) -> None:
        calls.append(name)
        if len(calls) == 1:  # removing the old key: SIGINT arrives
            raise Interrupted(2)
        real_delete(self, name)

    monkeypatch.setattr(LocalBackend, "delete", interrupted_once)
    with pytest.raises(Interrupted) as raised:
        change_passphrase(repo, SECOND)
    monkeypatch.undo()
    assert "removed again" in rolled_back(raised.value)[0]
    assert sorted(info.name for info in repo.backend.list("keys/")) == before
    Repository.open(tmp_path / "repo", PASSPHRASE)
    with pytest.raises(WrongPassphrase):
        Repository.open(tmp_path / "repo", SECOND)
