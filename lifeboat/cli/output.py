"""Rendering: rich for people, JSON for machines (``--json``). Errors always go to stderr.

Everything written here passes through :func:`lifeboat.redact.redact` on its way out, so no
password or passphrase reaches the terminal, a pipe or a log collector.

rich is imported when something is first drawn: ``console`` and ``err_console`` are made on
first use (PEP 562), so a command that prints JSON or nothing never imports it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from lifeboat.redact import redact, redact_data

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


class RedactingStream:
    """A text stream that redacts secrets from what is written to the stream it wraps.

    The wrapped stream is looked up on every write (``sys.stdout`` may be replaced, e.g. by tests).
    """

    def __init__(self, get: Callable[[], TextIO]) -> None:
        self._get = get

    def write(self, text: str) -> int:
        self._get().write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._get().flush()

    def isatty(self) -> bool:
        return self._get().isatty()

    def fileno(self) -> int:
        return self._get().fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._get(), "encoding", "utf-8")


stdout = RedactingStream(lambda: sys.stdout)
stderr = RedactingStream(lambda: sys.stderr)
console: Console  # made on first use by __getattr__ below
err_console: Console


def _make_console(name: str) -> Console:
    from rich.console import Console

    if name == "err_console":
        return Console(file=stderr, highlight=False)  # type: ignore[arg-type]
    # Not a terminal (pipes, CI logs): rich would assume 80 columns and squeeze tables of ids; an
    # explicit COLUMNS (the operator's or a test's) is honoured either way.
    return Console(
        file=stdout,  # type: ignore[arg-type]
        highlight=False,
        width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200,
    )


def __getattr__(name: str) -> Any:
    """``console``/``err_console``: made (and kept) on first use, so rich loads only to draw."""
    if name in ("console", "err_console"):
        made = globals()[name] = _make_console(name)
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_json_mode = False


def set_json(enabled: bool) -> None:
    global _json_mode
    _json_mode = enabled


def json_mode() -> bool:
    return _json_mode


def _to_jsonable(data: Any) -> Any:
    pydantic = sys.modules.get("pydantic")  # not imported: nothing here is a model
    if pydantic is not None and isinstance(data, pydantic.BaseModel):
        return data.model_dump(mode="json")
    if dataclasses.is_dataclass(data) and not isinstance(data, type):  # e.g. a catalog entry
        return _to_jsonable(dataclasses.asdict(data))
    if isinstance(data, list):
        return [_to_jsonable(item) for item in data]
    if isinstance(data, dict):
        return {key: _to_jsonable(value) for key, value in data.items()}
    return data


def emit(data: Any, render: Callable[[Any], None] | None = None) -> None:
    """Print a command's result: JSON in --json mode, otherwise the human renderer (or JSON)."""
    if _json_mode or render is None:
        sys.stdout.write(json.dumps(redact_data(_to_jsonable(data)), indent=2, default=str) + "\n")
        sys.stdout.flush()
    else:
        render(data)


def info(message: str) -> None:
    """Progress chatter: stderr, so stdout stays clean for --json."""
    _err_console().print(message)


def _err_console() -> Console:
    """``err_console`` from inside this module (``__getattr__`` serves only other modules)."""
    made: Console | None = globals().get("err_console")
    return made if made is not None else __getattr__("err_console")


def error(message: str, exc: BaseException | None = None, *, kind: str | None = None, code: int = 1) -> None:
    """One line on stderr (one JSON object with ``--json``): the whole of what a failure prints."""
    kind = kind or (type(exc).__name__ if exc is not None else "error")
    code = getattr(exc, "exit_code", code)
    message = " ".join(redact(message).split())  # one line, whatever the message held
    if _json_mode:
        sys.stderr.write(json.dumps({"error": kind, "message": message, "exit_code": code}) + "\n")
        sys.stderr.flush()
    else:
        from rich.markup import escape

        _err_console().print(
            f"[bold red]lifeboat: error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True
        )


def local_time(value: str | datetime | None) -> str:
    """A time for people: local time, to the second, with the zone (``2026-12-04 01:12:33 CET``).

    Accepts a datetime or an ISO 8601 string (as stored in JSON); naive times are taken as UTC.
    """
    if value is None or value == "":
        return ""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)[:19]  # not ISO 8601: shown as stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone()
    zone = local.strftime("%Z")
    if not zone.isalpha():  # some zones have no abbreviation ("+03"): show the offset
        zone = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S ") + zone


def table(*columns: str, whole: tuple[str, ...] = ("id", "time"), **options: Any) -> Table:
    """A table for people: a header rule instead of a box and two spaces between columns (restic's
    look), so a listing fits 80 columns. Columns named in ``whole`` (ids, times) never wrap; other cells fold rather than get
    cut with an ellipsis. Numbers-like columns are right-aligned by the caller if wanted."""
    from rich import box
    from rich.table import Table

    made = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold",
        **options,
    )
    for column in columns:
        made.add_column(column, overflow="fold", no_wrap=column in whole)
    return made
