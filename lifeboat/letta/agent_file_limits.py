"""What an agent file may hold, and how validation reports what it does not.

:class:`Limits` bounds sizes and counts (anything larger is refused, not truncated);
:class:`Problems` collects every problem (bounded) so the operator sees them all at once;
:func:`fail` turns them into one :class:`ValidationFailed` whose lines are safe to print.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lifeboat.errors import ValidationFailed


@dataclass(frozen=True)
class Limits:
    """Upper bounds for an agent file; anything larger is refused, not truncated."""

    max_bytes: int = 256 * 1024 * 1024
    max_depth: int = 48
    max_agents: int = 1_000
    max_entities: int = 100_000  # per top-level list (blocks, tools, files...)
    max_messages: int = 2_000_000  # across all agents
    max_name_chars: int = 255
    max_list_items: int = 10_000  # tags, id lists, secrets of one object
    max_problems: int = 200  # problems listed before "... and N more"
    allow_stdio_mcp: bool = False  # stdio MCP servers run a command on the Letta host


DEFAULT_LIMITS = Limits()


class Problems:
    """An ordered, bounded list of problems found so far."""

    def __init__(self, limit: int = DEFAULT_LIMITS.max_problems) -> None:
        self.items: list[str] = []
        self.dropped = 0
        self.limit = limit

    def add(self, message: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(message)
        else:
            self.dropped += 1

    def extend(self, messages: Iterable[str]) -> None:
        for message in messages:
            self.add(message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def as_list(self) -> list[str]:
        return self.items + ([f"... and {self.dropped} more problems"] if self.dropped else [])


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Problems quote the document: escape anything that would break a line (or a terminal)."""
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def fail(problems: list[str]) -> ValidationFailed:
    problems = [one_line(problem) for problem in problems]
    count = len(problems)
    head = f"agent file rejected: {count} problem{'s' if count != 1 else ''}: "
    return ValidationFailed(head + "; ".join(problems[:10]) + (" ..." if count > 10 else ""), problems)
