"""The typer app. Thin: parse, call one operation, render (rich or --json), map errors to exit codes.

Each command group lives in its own module and registers itself on ``app`` when imported below.
"""

from __future__ import annotations

from lifeboat.cli.app import app, main

# Command modules register themselves on import (keep this list sorted).
from lifeboat.cli import backup, demo, repository  # noqa: F401  isort: skip
from lifeboat.cli import agent_file  # noqa: F401  isort: skip
from lifeboat.cli import verify  # noqa: F401  isort: skip
from lifeboat.cli import agents  # noqa: F401  isort: skip
from lifeboat.cli import drill, maintenance  # noqa: F401  isort: skip

__all__ = ["app", "main"]
