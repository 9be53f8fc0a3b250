"""Which module registers each command, so that ``lifeboat CMD`` imports only CMD's module.

Every command module registers its commands on the root app when it is imported. Importing all
of them pulls in most of lifeboat and its libraries, which used to be most of the wall time of a
short command (a one-agent restore, an unchanged backup, ``--version``). :func:`modules_for`
picks the modules a command line needs: only the named command's module when the line starts
with a known command (after ``--json``/``--debug``), none for ``--version``, and every module
otherwise (no command, ``--help`` or any other option before the command, an unknown command:
the listing, the usage line and click's "did you mean" need them all). :func:`load` imports
them in a canonical order, so the help listing reads the same however many were loaded before.
tests/cli/test_commands.py checks :data:`COMMAND_MODULES` against what importing every module
registers, so the table cannot drift.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# top-level command or group name -> the module of lifeboat.cli registering it
COMMAND_MODULES: dict[str, str] = {
    "export": "agent_file",
    "import": "agent_file",
    "agents": "agents",
    "diff": "agents",
    "backup": "backup",
    "demo": "demo",
    "drill": "drill",
    "drills": "drill",
    "key": "keys",
    "copy": "maintenance",
    "doctor": "maintenance",
    "forget": "maintenance",
    "prune": "maintenance",
    "unlock": "maintenance",
    "migrate": "migrate",
    "repair": "repair",
    "check": "repository",
    "init": "repository",
    "snapshots": "repository",
    "restore": "restore",
    "ls": "snapshot_contents",
    "stats": "snapshot_contents",
    "tag": "snapshot_tags",
    "upgrade-repository": "upgrade",
    "reconcile": "verify",
    "verify": "verify",
}
MODULES: tuple[str, ...] = tuple(sorted(set(COMMAND_MODULES.values())))
# root options that are looked past to find the command (main() moves them in front of it)
_PASSED_OVER = frozenset({"--json", "--debug"})


def command_name(args: Sequence[str]) -> str | None:
    """The known command ``lifeboat ARGS`` runs (``ARGS`` as :func:`modules_for` takes them), or None."""
    for arg in args:
        if arg not in _PASSED_OVER:
            return arg if arg in COMMAND_MODULES else None
    return None


def modules_for(args: Sequence[str]) -> tuple[str, ...]:
    """The command modules ``lifeboat ARGS`` needs (``ARGS`` as :func:`~lifeboat.cli.app.main`
    passes them to the app: ``--json``/``--debug`` already in front)."""
    for arg in args:
        if arg in _PASSED_OVER:
            continue
        if arg == "--version":  # eager: prints the version before any command is looked up
            return ()
        if arg in COMMAND_MODULES:
            return (COMMAND_MODULES[arg],)
        break
    return MODULES


def load(modules: Iterable[str]) -> typer.Typer:
    """Import ``modules`` (names in :data:`MODULES`) so their commands are registered; the app."""
    from lifeboat.cli import help_style
    from lifeboat.cli.app import app

    for name in modules:
        importlib.import_module(f"lifeboat.cli.{name}")
    _canonical_order(app)
    help_style.apply(app)
    return app


def full_app() -> typer.Typer:
    """The app with every command registered (for the help listing, docs and tests)."""
    return load(MODULES)


def module_of(info: Any) -> str:
    """The module (short name) a registered command or group (typer's ``CommandInfo`` or
    ``TyperInfo``) was declared in: a group's is the module of its commands."""
    instance = getattr(info, "typer_instance", None)
    if instance is not None:
        found = {module_of(command) for command in instance.registered_commands}
        return found.pop() if len(found) == 1 else ",".join(sorted(found))
    return str(info.callback.__module__).rpartition(".")[2]


def _canonical_order(app: typer.Typer) -> None:
    """Commands in the order importing every module in :data:`MODULES` order registers them, even
    when some were registered earlier in this process (stable: a module's own order stays)."""

    def rank(info: Any) -> int:
        module = module_of(info)
        return MODULES.index(module) if module in MODULES else len(MODULES)

    app.registered_commands.sort(key=rank)
    app.registered_groups.sort(key=rank)
