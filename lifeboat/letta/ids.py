"""Letta id formats (docs/LETTA.md §2): ``<prefix>-<uuid4>`` strings generated client-side."""

from __future__ import annotations

import re
import uuid

# table -> prefix of its ``id`` column. Tables whose id is another table's id (run_metrics,
# step_metrics) or that have no id convention (prompts, mcp_oauth) are absent.
ID_PREFIX: dict[str, str] = {
    "organizations": "org",
    "users": "user",
    "tools": "tool",
    "mcp_server": "mcp_server",
    "mcp_tools": "mcp-tool-mapping",
    "providers": "provider",
    "provider_models": "model",
    "sandbox_configs": "sandbox",
    "sandbox_environment_variables": "sandbox-env",
    "sources": "source",
    "files": "file",
    "file_contents": "file_content",
    "source_passages": "passage",
    "archives": "archive",
    "archival_passages": "passage",
    "passage_tags": "passage-tag",
    "block": "block",
    "block_history": "block_hist",
    "identities": "identity",
    "groups": "group",
    "jobs": "job",
    "agents": "agent",
    "agent_environment_variables": "agent-env",
    "messages": "message",
    "conversations": "conv",
    "conversation_messages": "conv_msg",
    "files_agents": "file_agent",
    "runs": "run",
    "steps": "step",
    "llm_batch_items": "batch_item",
    "llm_batch_job": "batch_req",
    "provider_traces": "provider_trace",
}

# Other prefixes a table's ids legitimately have: before Letta 0.12 a run was a ``jobs`` row with
# job_type 'run' and a ``run-`` id.
ID_OTHER_PREFIXES: dict[str, tuple[str, ...]] = {"jobs": ("run",)}

# Tables whose ``id`` is the id of a row in another table (same prefix).
ID_SAME_AS: dict[str, str] = {"run_metrics": "runs", "step_metrics": "steps"}

_UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_LOOSE = r"[0-9a-fA-F]{8}"


def table_prefix(table: str) -> str | None:
    """The id prefix of ``table``'s ``id`` column (following ID_SAME_AS), or None when it has no convention."""
    return ID_PREFIX.get(ID_SAME_AS.get(table, table))


def pg_predicate(prefix: str, column: str, *, strict: bool = False) -> str:
    """SQL boolean: ``column`` has the loose (or strict) shape of ``prefix`` ids.

    The same shapes as :func:`loose_pattern` / :func:`strict_pattern`, written with plain string
    functions: PostgreSQL's regex engine costs ~15 µs per id with the strict pattern, which is
    the bulk of verifying a large database's ids. ``prefix`` and ``column`` are trusted SQL
    (prefixes from :data:`ID_PREFIX`, column names from the catalog).
    """
    if not re.fullmatch(r"[a-z_-]+", prefix):
        raise ValueError(f"unexpected id prefix {prefix!r}")
    head = len(prefix) + 1  # characters of "<prefix>-"
    starts = f"left({column}, {head}) = '{prefix}-'"
    if not strict:
        first8 = f"substr({column}, {head + 1}, 8)"
        return (
            f"({starts} AND length({first8}) = 8 AND translate({first8}, '0123456789abcdefABCDEF', '') = '')"
        )
    uuid_part = f"substr({column}, {head + 1})"
    dashes = " || ".join(f"substr({column}, {head + offset}, 1)" for offset in (9, 14, 19, 24))
    return (
        f"({starts} AND length({column}) = {head + 36}"
        f" AND translate({uuid_part}, '0123456789abcdef', '') = '----'"
        f" AND {dashes} = '----'"
        f" AND substr({column}, {head + 15}, 1) = '4'"
        f" AND substr({column}, {head + 20}, 1) IN ('8', '9', 'a', 'b'))"
    )


def strict_pattern(prefix: str) -> re.Pattern[str]:
    """The REST path validators' shape: prefix + lowercase uuid4."""
    return re.compile(rf"^{re.escape(prefix)}-{_UUID4}$")


def loose_pattern(prefix: str) -> re.Pattern[str]:
    """The pydantic schemas' shape: prefix + 8 hex digits, then anything."""
    return re.compile(rf"^{re.escape(prefix)}-{_LOOSE}")


def is_valid(table: str, value: str, *, strict: bool = False) -> bool:
    prefix = ID_PREFIX[table]
    pattern = strict_pattern(prefix) if strict else loose_pattern(prefix)
    return bool(pattern.match(value))


def new_id(prefix: str) -> str:
    """A fresh id in the strict shape, as Letta would generate it."""
    return f"{prefix}-{uuid.uuid4()}"


def prefix_of(value: str) -> str | None:
    """The prefix of an id (``agent-…`` → ``agent``), matching the longest known prefix."""
    for prefix in sorted(set(ID_PREFIX.values()), key=len, reverse=True):
        if value.startswith(prefix + "-"):
            return prefix
    return None
