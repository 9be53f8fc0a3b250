"""Helpers every test folder shares: the test passphrase and fast keys, small repository
parameters, and the real CLI run in a subprocess (database comparisons live in dbcompare.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.repo import ChunkerParams, KdfParams
from lifeboat.repo.repository import Repository

PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
SMALL_CHUNKS = ChunkerParams(min_size=2 * 1024, avg_size=8 * 1024, max_size=32 * 1024)
SMALL_PACK = 64 * 1024
LIFEBOAT = [sys.executable, "-m", "lifeboat"]


def new_repo(location: str | Path, *, passphrase: str = PASSPHRASE) -> Repository:
    """An encrypted repository with default blob and pack sizes and a fast key derivation."""
    return Repository.init(location, passphrase, kdf=FAST_KDF)


def small_repo(location: str | Path, *, encrypt: bool = True, passphrase: str = PASSPHRASE) -> Repository:
    """A repository with small blobs and packs (many packs from little data)."""
    return Repository.init(
        location,
        passphrase if encrypt else None,
        encrypt=encrypt,
        chunker=SMALL_CHUNKS,
        pack_size=SMALL_PACK,
        kdf=FAST_KDF,
    )


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: ours, the test passphrase, then ``env``."""
    return {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, **(env or {})}


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (exit codes and output as an operator sees them)."""
    return subprocess.run(
        [*LIFEBOAT, *args], capture_output=True, text=True, env=cli_env(env), check=check, timeout=timeout
    )


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the real CLI in a subprocess without waiting (to signal it mid-work)."""
    return subprocess.Popen(
        [*LIFEBOAT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
    )


def cli_commands() -> list[str]:
    """Every command path of the CLI (``backup``, ``agents list``, ``repair index``, ...)."""
    import typer.main

    from lifeboat.cli import full_app

    app = full_app()

    def walk(command: object, path: list[str]) -> list[str]:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            return [" ".join(path)]
        return [found for name, sub in subcommands.items() for found in walk(sub, [*path, name])]

    return sorted(walk(typer.main.get_command(app), []))


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``lifeboat ARGS`` in this process through the real entry point: (exit code, stdout, stderr)."""
    from lifeboat.cli import main, output

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        output.set_json(False)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
