"""How ``--help`` reads: click's type names (TEXT, INTEGER, PATH) instead of typer's ``<str>``,
nothing after a flag, and docstrings as flowing sentences (their line breaks are source layout).

Typer 0.29 prints Python types (``<str>``, ``<bool>``, ``<list[str]>``); operators know the
click/restic style. An explicit ``metavar`` on an option always wins.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import typer
import typer.core

_NAMES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "path": "PATH",
    "Path": "PATH",
    "datetime": "DATETIME",
    "int range": "INTEGER",
    "float range": "FLOAT",
}
_typer_display_type = typer.core.TyperArgument.display_type
_typer_option_display_type = typer.core.TyperOption.display_type
_unwrapped: set[int] = set()  # ids of the commands whose help is unwrapped already (apply runs again
# as more command modules register: lifeboat.cli.commands)


def click_type_name(label: str) -> str:
    """``<str>`` → ``TEXT``, ``<list[int]>`` → ``INTEGER``, ``<a|b>`` stays ``a|b``."""
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    listed = re.fullmatch(r"list\[(.*)\]", inner)
    if listed:
        inner = listed.group(1)
    return _NAMES.get(inner, inner)


def _argument_type(self: Any, ctx: Any) -> str:
    return click_type_name(_typer_display_type(self, ctx))


def _option_type(self: Any, ctx: Any) -> str:
    if getattr(self, "is_flag", False) and getattr(self, "is_bool_flag", False):
        return ""  # a flag takes no value
    return click_type_name(_typer_option_display_type(self, ctx))


def unwrap(text: str) -> str:
    """Paragraphs kept, line breaks inside a paragraph joined (a ``\\b`` paragraph stays as written)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def apply(app: typer.Typer) -> None:
    """Install the click type names and unwrap every command's docstring in ``app`` (again: the
    commands registered since the last call)."""
    typer.core.TyperArgument.display_type = _argument_type  # type: ignore[method-assign]
    typer.core.TyperOption.display_type = _option_type  # type: ignore[method-assign]
    _unwrap_commands(app)


def _unwrap_commands(app: typer.Typer) -> None:
    for command in app.registered_commands:
        if id(command) in _unwrapped:
            continue
        _unwrapped.add(id(command))
        text = command.help or (inspect.getdoc(command.callback) if command.callback else None)
        if text:
            command.help = unwrap(text)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _unwrap_commands(group.typer_instance)
