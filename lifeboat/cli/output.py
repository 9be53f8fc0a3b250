"""Rendering: rich for people, JSON for machines (``--json``). Errors always go to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from rich.console import Console

# Not a terminal (pipes, CI logs): rich would assume 80 columns and squeeze tables of ids.
console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False)

_json_mode = False


def set_json(enabled: bool) -> None:
    global _json_mode
    _json_mode = enabled


def json_mode() -> bool:
    return _json_mode


def _to_jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_to_jsonable(item) for item in data]
    if isinstance(data, dict):
        return {key: _to_jsonable(value) for key, value in data.items()}
    return data


def emit(data: Any, render: Callable[[Any], None] | None = None) -> None:
    """Print a command's result: JSON in --json mode, otherwise the human renderer (or JSON)."""
    if _json_mode or render is None:
        sys.stdout.write(json.dumps(_to_jsonable(data), indent=2, default=str) + "\n")
        sys.stdout.flush()
    else:
        render(data)


def info(message: str) -> None:
    """Progress chatter: stderr, so stdout stays clean for --json."""
    err_console.print(message)


def error(message: str, exc: BaseException | None = None) -> None:
    kind = type(exc).__name__ if exc is not None else "error"
    if _json_mode:
        code = getattr(exc, "exit_code", 1)
        sys.stderr.write(json.dumps({"error": kind, "message": message, "exit_code": code}) + "\n")
    else:
        err_console.print(
            f"[bold red]lifeboat: error:[/] {message}", markup=True, highlight=False, soft_wrap=True
        )
