"""Lazy command registration (lifeboat/cli/commands.py): the name → module table is what
importing every command module registers, and a command line loads only what it needs without
changing what it prints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.cli import commands, full_app

CLI = Path(commands.__file__).parent


def test_the_table_is_what_full_registration_produces() -> None:
    app = full_app()
    registered = {
        (info.name or info.callback.__name__.replace("_", "-")): commands.module_of(info)
        for info in app.registered_commands
    }
    registered |= {str(group.name): commands.module_of(group) for group in app.registered_groups}
    assert registered == commands.COMMAND_MODULES


def test_every_module_that_registers_commands_is_listed() -> None:
    registering = {
        path.stem
        for path in CLI.glob("*.py")
        if re.search(r"^from lifeboat\.cli\.app import app$", path.read_text(), re.MULTILINE)
    }
    assert registering == set(commands.MODULES)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["restore", "--agent", "agent-1"], ("restore",)),
        (["--debug", "--json", "backup", "--repo", "r"], ("backup",)),
        (["agents", "list", "--help"], ("agents",)),
        (["upgrade-repository"], ("upgrade",)),
        (["--version"], ()),
        (["--json", "--version", "--help"], ()),
        ([], commands.MODULES),
        (["--help"], commands.MODULES),
        (["--help", "restore"], commands.MODULES),
        (["--", "restore"], commands.MODULES),
        (["nosuchcommand"], commands.MODULES),
        (["Restore"], commands.MODULES),
    ],
)
def test_modules_for(args: list[str], expected: tuple[str, ...]) -> None:
    assert commands.modules_for(args) == expected


_PROBE = """
import json, sys
from lifeboat.cli import main
from lifeboat.cli.commands import MODULES
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit:
        pass
heavy = ("rich", "pydantic", "psycopg", "click", "cryptography", "argon2")
print(json.dumps({
    "cli": sorted(m for m in sys.modules if m.startswith("lifeboat.cli.") and m.rpartition(".")[2] in MODULES),
    "heavy": sorted(m for m in heavy if m in sys.modules),
}), file=sys.__stderr__)
"""


def _probe(*runs: list[str]) -> tuple[str, dict[str, list[str]]]:
    """Run ``main`` once per ``runs`` in one fresh interpreter: (stdout, what was imported)."""
    env = {**os.environ, "COLUMNS": "120", "LIFEBOAT_PASSWORD": "x"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(runs))], capture_output=True, text=True, env=env
    )
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_a_command_imports_only_its_module() -> None:
    out, imported = _probe(["--version"])
    assert out.startswith("lifeboat ") and imported == {"cli": [], "heavy": []}
    _out, imported = _probe(["restore", "--help"])
    assert imported["cli"] == ["lifeboat.cli.restore"]
    assert not {"psycopg", "cryptography", "click"} & set(imported["heavy"])  # (typer needs pydantic)
    _out, imported = _probe(["nosuchcommand"])  # every command module: none imports an operation
    assert len(imported["cli"]) == len(commands.MODULES)
    assert not {"psycopg", "cryptography", "click"} & set(imported["heavy"])


def test_help_reads_the_same_however_commands_were_loaded() -> None:
    fresh_listing, _ = _probe(["--help"])
    fresh_restore, _ = _probe(["restore", "--help"])
    fresh_agents, _ = _probe(["agents", "list", "--help"])
    after_others, imported = _probe(["verify", "--help"], ["restore", "--help"], ["--help"])
    assert len(imported["cli"]) == len(commands.MODULES)
    assert "Usage: lifeboat [OPTIONS] COMMAND" in fresh_listing and "restore" in fresh_listing
    assert after_others.endswith(fresh_restore + fresh_listing)
    loaded, _ = _probe(["--help"], ["agents", "list", "--help"])
    assert loaded == fresh_listing + fresh_agents
