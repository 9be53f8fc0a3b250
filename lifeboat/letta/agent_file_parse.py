"""Validation passes 1 and 2 of an agent file: bytes -> JSON -> the pydantic models.

:func:`parse` checks size, encoding, JSON syntax, nesting depth, and scans every value (no NUL
characters or lone surrogates, which PostgreSQL cannot store; finite numbers only);
:func:`to_model` applies :mod:`lifeboat.letta.agent_file`'s models (types, required fields).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from lifeboat.letta.agent_file import AgentFile, describe_validation_error
from lifeboat.letta.agent_file_limits import DEFAULT_LIMITS, Limits, fail


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Bytes to a JSON object, refusing anything the later stages or PostgreSQL would choke on."""
    if len(data) > limits.max_bytes:
        raise fail(
            [f"file is {len(data):,} bytes; the limit is {limits.max_bytes:,} (raise it with --max-bytes)"]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail([f"file is not UTF-8 text (byte {exc.start})"]) from None
    document = _loads(text)
    if isinstance(document, str):  # Letta's importer tolerates double-encoded JSON
        document = _loads(document)
    if not isinstance(document, dict):
        raise fail([f"top level must be a JSON object, not {type(document).__name__}"])
    problems = list(scan_json(document, limits, strings=_may_hold_bad_strings(text)))
    if problems:
        raise fail(problems)
    return document


_BAD_ESCAPE = re.compile(r"\\u(0000|d[89a-f])", re.IGNORECASE)


def _may_hold_bad_strings(text: str) -> bool:
    """NUL and lone surrogates can only enter as \\u escapes (raw ones fail decoding/parsing)."""
    return "\\u" in text and bool(_BAD_ESCAPE.search(text))


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise fail(["JSON is nested too deeply"]) from None
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN/Infinity
        raise fail([f"not valid JSON: {str(exc).splitlines()[0][:200]}"]) from None


def scan_json(document: Any, limits: Limits = DEFAULT_LIMITS, *, strings: bool = True) -> Iterator[str]:
    """Problems in any value of the tree: depth, and (``strings``) NUL characters or lone surrogates.

    Iterative, so hostile nesting cannot exhaust the Python stack.
    """
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    reported = 0
    while stack and reported < limits.max_problems:
        value, path, depth = stack.pop()
        if depth > limits.max_depth:
            yield f"{path or '<document>'}: nested deeper than {limits.max_depth} levels"
            reported += 1
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                problem = _string_problem(key) if strings else None
                if problem:
                    yield f"{path or '<document>'}: a key {problem}"
                    reported += 1
                stack.append((item, f"{path}.{key}" if path else str(key)[:60], depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif strings and isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                yield f"{path or '<document>'}: {problem}"
                reported += 1


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character (PostgreSQL text cannot store it)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired UTF-16 surrogate"
    return None


# ---- pass 2: JSON -> models --------------------------------------------------------------------


def to_model(document: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> AgentFile:
    if "agents" not in document or not isinstance(document.get("agents"), list):
        raise fail(["not a Letta agent file: no 'agents' list (the legacy v1 format is not supported)"])
    try:
        return AgentFile.model_validate(document)
    except ValidationError as exc:
        raise fail(describe_validation_error(exc, limit=limits.max_problems)) from None
    except (ValueError, TypeError, RecursionError) as exc:  # defensive: never a traceback
        raise fail([f"schema validation failed: {str(exc).splitlines()[0][:200]}"]) from None
