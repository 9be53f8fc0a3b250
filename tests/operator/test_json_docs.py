"""docs/JSON.md documents the --json output of every command the CLI has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from lifeboat.cli import full_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "JSON.md"


def _commands(group: Any, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a command group (typer may vendor its own click)
            names += _commands(command, f"{prefix}{name} ")
        else:
            names.append(f"{prefix}{name}")
    return names


def test_every_command_has_a_json_section() -> None:
    headings = [line for line in DOC.read_text().splitlines() if line.startswith("### ")]
    documented = set()
    for line in headings:
        for code in re.findall(r"`([^`]+)`", line):
            words = code.split()
            documented |= {" ".join(words[: n + 1]) for n in range(len(words))}
    root = typer.main.get_command(full_app())
    missing = sorted(set(_commands(root)) - documented)
    assert not missing, f"add a section to docs/JSON.md for: {', '.join(missing)}"
