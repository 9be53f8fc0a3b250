"""The key derivation started before the command line is parsed (lifeboat/cli/early_key.py): it
derives exactly what opening the repository would, opening takes it only for the same inputs,
and whatever it cannot know cheaply just means no early start."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from support import LIFEBOAT, PASSPHRASE, cli, cli_env, small_repo

from lifeboat.cli import commands, early_key, full_app
from lifeboat.errors import WrongPassphrase
from lifeboat.repo import kdf
from lifeboat.repo.kdf import KdfParams
from lifeboat.repo.repository import Repository


@pytest.fixture(autouse=True)
def no_derivation_left() -> Iterator[None]:
    kdf._AHEAD.clear()
    yield
    kdf._AHEAD.clear()


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The salts of every Argon2id derivation run from now on."""
    salts: list[bytes] = []
    original = KdfParams._derive

    def counted(self: KdfParams, passphrase: str, salt: bytes) -> bytes:
        salts.append(salt)
        return original(self, passphrase, salt)

    monkeypatch.setattr(KdfParams, "_derive", counted)
    return salts


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    small_repo(tmp_path / "repo")
    monkeypatch.setenv("LIFEBOAT_PASSWORD", PASSPHRASE)
    monkeypatch.delenv("LIFEBOAT_REPOSITORY", raising=False)
    monkeypatch.delenv("LIFEBOAT_PASSWORD_FILE", raising=False)
    monkeypatch.setattr("lifeboat.settings.DEFAULT_CONFIG", tmp_path / "no-config.toml")
    return tmp_path / "repo"


def _started() -> list[tuple[KdfParams, bytes]]:
    """(parameters, salt) of each early derivation not yet taken, after waiting for it."""
    for future in kdf._AHEAD.values():
        future.result(timeout=60)
    return [(params, salt) for params, salt, _secret in kdf._AHEAD]


def _key_file(repo: Path) -> tuple[KdfParams, bytes]:
    (path,) = (repo / "keys").iterdir()
    params, salt, _sealed = kdf.parse_key_file(json.loads(path.read_bytes()))
    return params, salt


@pytest.mark.parametrize(
    "args",
    [
        ["backup", "--repo", "{repo}"],
        ["--json", "restore", "--agent", "agent-1", "--repo={repo}"],
        ["snapshots", "-r", "file://{repo}"],
    ],
)
def test_the_repository_open_takes_the_key_derived_early(
    repo: Path, derivations: list[bytes], args: list[str]
) -> None:
    early_key._start([arg.format(repo=repo) for arg in args])
    assert _started() == [_key_file(repo)]
    assert len(derivations) == 1

    Repository.open(repo, PASSPHRASE)
    assert len(derivations) == 1  # not derived again
    assert kdf._AHEAD == {}


def test_the_repository_and_passphrase_may_come_from_the_settings(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(PASSPHRASE + "\n")
    monkeypatch.delenv("LIFEBOAT_PASSWORD")
    monkeypatch.setenv("LIFEBOAT_REPOSITORY", str(repo))
    early_key._start(["check", "--password-file", str(secret)])
    assert _started() == [_key_file(repo)]


def test_another_passphrase_does_not_take_it(repo: Path, derivations: list[bytes]) -> None:
    early_key._start(["snapshots", "--repo", str(repo)])
    _started()
    with pytest.raises(WrongPassphrase):
        Repository.open(repo, "not the passphrase")
    assert len(derivations) == 2  # derived for the wrong passphrase; the early key stays
    Repository.open(repo, PASSPHRASE)
    assert len(derivations) == 2


@pytest.mark.parametrize(
    "case",
    ["no passphrase", "s3", "no repository", "damaged key file", "unbounded key file", "no key file"],
)
def test_nothing_starts_without_a_cheap_answer(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[bytes], case: str
) -> None:
    target = str(repo)
    (key_path,) = (repo / "keys").iterdir()
    if case == "no passphrase":
        monkeypatch.delenv("LIFEBOAT_PASSWORD")  # and stdin is no tty: a prompt would be needed
    elif case == "s3":
        target = "s3://bucket/prefix"
    elif case == "no repository":
        target = str(tmp_path / "nothing here")
    elif case == "damaged key file":
        key_path.write_bytes(b"{not json")
    elif case == "unbounded key file":
        document = json.loads(key_path.read_bytes())
        key_path.write_text(json.dumps({**document, "memory_cost": 2**40}))
    else:
        key_path.unlink()
    early_key._derive_ahead(["backup", "--repo", target])  # what the thread runs: never raises
    assert _started() == []
    assert derivations == []


def test_a_passphrase_from_a_pipe_is_left_for_the_command(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, derivations: list[bytes]
) -> None:
    pipe = tmp_path / "passphrase.fifo"
    os.mkfifo(pipe)
    monkeypatch.delenv("LIFEBOAT_PASSWORD")
    early_key._derive_ahead(["backup", "--repo", str(repo), "--password-file", str(pipe)])  # must not block
    assert _started() == []
    assert derivations == []


def test_the_cli_reads_a_piped_passphrase_once(repo: Path) -> None:
    result = subprocess.run(
        [*LIFEBOAT, "snapshots", "--repo", str(repo), "--password-file", "/dev/stdin"],
        input=PASSPHRASE + "\n", capture_output=True, text=True, env=cli_env({"LIFEBOAT_PASSWORD": ""}), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_commands_without_a_repository_or_asking_for_help_start_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []

    class Thread:
        def __init__(self, *args: object, **kwargs: object) -> None:
            started.append(kwargs.get("args"))

        def start(self) -> None:
            pass

    monkeypatch.setattr(early_key.threading, "Thread", Thread)
    early_key.derive_ahead(["backup", "--repo", str(repo)])
    assert len(started) == 1  # the fake sees a start
    started.clear()
    for args in (
        ["init", "--repo", str(repo)],
        ["demo"],
        ["--version"],
        ["nosuchcommand", "--repo", str(repo)],
        [],
        ["backup", "--repo", str(repo), "--help"],
    ):
        early_key.derive_ahead(args)
    assert started == []


def test_the_keys_directory_is_the_repository_format_s() -> None:
    from lifeboat.repo.config import KEYS_DIR

    assert early_key.KEYS_DIR == KEYS_DIR


def test_the_commands_left_out_are_those_without_a_repository_option() -> None:
    root = typer.main.get_command(full_app())

    def has_repo_option(command: object) -> bool:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            return any(has_repo_option(sub) for sub in subcommands.values())
        return any("--repo" in getattr(param, "opts", []) for param in getattr(command, "params", []))

    without = {name for name, command in root.commands.items() if not has_repo_option(command)}  # type: ignore[attr-defined]
    assert without <= early_key.NO_REPOSITORY <= set(commands.COMMAND_MODULES)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["backup", "--repo", "/r"], "/r"),
        (["backup", "--repo=/r"], "/r"),
        (["backup", "-r", "/r", "--repo", "/other"], "/r"),
        (["backup", "--", "--repo", "/r"], None),
        (["backup", "--repo"], None),
        (["backup", "--repository", "/r"], None),
    ],
)
def test_options(args: list[str], expected: str | None) -> None:
    assert early_key._option(args, "--repo", "-r") == expected


def test_the_cli_still_refuses_a_wrong_passphrase(repo: Path) -> None:
    result = cli("snapshots", "--repo", str(repo), env={"LIFEBOAT_PASSWORD": "not the passphrase"})
    assert result.returncode == 12
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not the passphrase" not in result.stderr + result.stdout
