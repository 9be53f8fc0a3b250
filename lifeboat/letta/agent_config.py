"""Agent configuration rules Letta applies in code: tool rules, file windows, embeddings (§0, §4)."""

from __future__ import annotations

# letta.schemas.enums.ToolRuleType: the ``type`` values stored in agents.tool_rules.
TOOL_RULE_TYPES = (
    "run_first",
    "exit_loop",
    "continue_loop",
    "conditional",
    "constrain_child_tools",
    "max_count_per_step",
    "parent_last_tool",
    "required_before_exit",
    "requires_approval",
)

# Embedding columns are vector(MAX_EMBEDDING_DIM); shorter model outputs are zero-padded.
MAX_EMBEDDING_DIM = 4096
EMBEDDING_TABLES = ("archival_passages", "source_passages")

# refresh_file_blocks cuts an open file's view to the agent's per-file limit and appends this.
FILE_TRUNCATION_MARKER = (
    "...[TRUNCATED]\n# NOTE: This block is truncated, use functions to view the full content."
)
DEFAULT_MAX_FILES_OPEN = 5
DEFAULT_PER_FILE_CHAR_LIMIT = 50_000


def file_window_defaults(context_window: int | None) -> tuple[int, int]:
    """(max_files_open, per_file_view_window_char_limit) Letta derives when the agent sets neither."""
    if not context_window:
        return DEFAULT_MAX_FILES_OPEN, DEFAULT_PER_FILE_CHAR_LIMIT
    if context_window <= 8_000:
        return 3, 5_000
    if context_window <= 32_000:
        return 5, 15_000
    if context_window <= 128_000:
        return 10, 25_000
    if context_window <= 200_000:
        return 10, 40_000
    return 15, 40_000


# The same ladder as SQL over an agents row aliased ``a`` (for set-based checks); a context
# window that is missing, zero or not a number counts as unknown, like Letta's ``if not context_window``.
_CONTEXT_WINDOW_SQL = """
CASE WHEN json_typeof(a.llm_config) = 'object' AND json_typeof(a.llm_config->'context_window') = 'number'
     THEN NULLIF((a.llm_config->>'context_window')::numeric, 0) END
"""
MAX_FILES_OPEN_SQL = f"""
COALESCE(a.max_files_open, CASE
  WHEN ({_CONTEXT_WINDOW_SQL}) IS NULL THEN {DEFAULT_MAX_FILES_OPEN}
  WHEN ({_CONTEXT_WINDOW_SQL}) <= 8000 THEN 3
  WHEN ({_CONTEXT_WINDOW_SQL}) <= 32000 THEN 5
  WHEN ({_CONTEXT_WINDOW_SQL}) <= 200000 THEN 10
  ELSE 15 END)
"""
