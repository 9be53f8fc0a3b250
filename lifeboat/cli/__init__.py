"""The typer CLI. Thin: parse, call one operation, render (rich or --json), map errors to exit codes.

Each command group lives in its own module and registers itself on the root app
(:mod:`lifeboat.cli.app`) when imported. ``main``, the console entry point, imports only the
module of the command it runs (:mod:`lifeboat.cli.commands`); ``full_app()`` is the app with
every command registered.
"""

from __future__ import annotations

from lifeboat.cli.app import main
from lifeboat.cli.commands import full_app

__all__ = ["full_app", "main"]
