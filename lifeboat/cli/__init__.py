"""The typer app. Thin: parse, call one operation, render (rich or --json), map errors to exit codes.

Each command group lives in its own module and registers itself on ``app`` when imported below.
"""

from __future__ import annotations

from lifeboat.cli.app import app, main

# Command modules register themselves on import (keep this list sorted).
from lifeboat.cli import (  # noqa: F401  isort: skip
    agent_file,
    agents,
    backup,
    demo,
    drill,
    keys,
    maintenance,
    migrate,
    repair,
    repository,
    restore,
    snapshot_contents,
    snapshot_tags,
    upgrade,
    verify,
)

from lifeboat.cli import help_style

help_style.apply(app)

__all__ = ["app", "main"]
