"""Hypothesis strategies for malformed and hostile agent files: valid documents, then mutations."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from .samples import rich_document

HOSTILE_TEXT = [
    "",
    " ",
    "../../etc/passwd",
    "/etc/passwd",
    "C:\\evil",
    "a\x00b",
    "\ud800",
    "x" * 300,
    "agent-0",
    "agent-1",
    "tool-0",
    "block-0",
    "block-2",
    "message-0",
    "message-4",
    "file-0",
    "source-0",
    "group-0",
    "archive-0",
    "identity-0",
    "conv-0",
    "passage-0",
    "handbook/rules.txt",
    "system",
    "user",
    "text",
    "sleeptime",
    "round_robin",
    "openai",
    "NATIVE",
    "requires_approval",
    "2026-01-01T00:00:00Z",
    "not-a-date",
    "AAAAAA==",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
)
KEYS = ["id", "type", "text", "name", "role", "agent_id", "tool_name", "manager_type", "x", ""]
json_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3),
)


Path = tuple[Any, ...]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside a JSON document (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, (*prefix, index)))
    return found


def _parent(doc: Any, path: Path) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _set(doc: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    _parent(doc, path)[path[-1]] = value
    return doc


def _delete(doc: Any, path: Path) -> Any:
    if not path:
        return {}
    parent = _parent(doc, path)
    del parent[path[-1]]
    return doc


def _duplicate(doc: Any, path: Path) -> Any:
    target = _parent(doc, (*path, None)) if path else doc
    if isinstance(target, list) and target:
        target.append(copy.deepcopy(target[-1]))
    elif isinstance(target, dict) and target:
        key = next(iter(target))
        target[f"{key}_copy"] = copy.deepcopy(target[key])
    return doc


# The two base documents as JSON text (json.loads is a fast deep copy) and their paths.
_BASES = {complete: json.dumps(rich_document(complete=complete)) for complete in (True, False)}
_PATHS = {complete: paths(json.loads(text)) for complete, text in _BASES.items()}


def _apply(doc: Any, operation: str, path: Path, value: Any) -> Any:
    """One mutation; a path that an earlier mutation removed makes it a no-op."""
    try:
        if operation == "delete":
            return _delete(doc, path)
        if operation == "duplicate":
            return _duplicate(doc, path)
        return _set(doc, path, value)
    except (KeyError, IndexError, TypeError):
        return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A rich (valid) document with 1-4 random mutations, sometimes damaged as bytes too."""
    complete = draw(st.booleans())
    doc: Any = json.loads(_BASES[complete])
    candidates = _PATHS[complete]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = candidates[draw(st.integers(min_value=0, max_value=len(candidates) - 1))]
        operation = draw(st.sampled_from(["set", "set", "set", "delete", "duplicate", "swap"]))
        if operation == "set":
            value = draw(json_values)
        elif operation == "swap":  # point a reference somewhere else
            value = draw(st.sampled_from(HOSTILE_TEXT[8:22]))
        else:
            value = None
        doc = _apply(doc, operation, path, value)
    data = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none"] * 8 + ["truncate", "flip"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]
    elif damage == "flip" and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(min_value=1, max_value=255))]) + data[at + 1 :]
    return data
