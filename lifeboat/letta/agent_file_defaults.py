"""Letta 0.16.8 defaults an importer must reproduce to create rows exactly as the server would.

Only values Letta computes *at creation* and stores in a row are here; each names its origin.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEZONE = "UTC"  # letta/constants.py
SLEEPTIME_TURNS_COUNTER_START = -1  # group_manager.create_group_async, when a frequency is set

# services/summarizer/summarizer_config.py:get_default_summarizer_model (keys are ProviderType values)
_SUMMARIZER_MODELS = {
    "anthropic": "anthropic/claude-haiku-4-5",
    "openai": "openai/gpt-5-mini",
    "google_ai": "google_ai/gemini-2.5-flash",
    "letta": "letta/auto",
}

# letta/prompts/summarizer_prompt.py:SLIDING_PROMPT (the default mode's prompt, f-string evaluated)
SLIDING_PROMPT = (
    "The following messages are being evicted from the BEGINNING of your context window. Write a detailed summary that captures what happened in these messages to appear BEFORE the remaining recent messages in context, providing background for what comes after. Include the following sections:\n"
    "\n"
    "1.**High level goals**: What is the high level goal and ongoing task? Capture the user's explicit requests and intent in detail. If there is an existing summary in the transcript, make sure to take it into consideration to continue tracking the higher level goals and long-term progress.\n"
    "\n"
    "2. **What happened**: The conversations, tasks, and exchanges that took place. What did the user ask for? What did you do? How did things progress? If there is a previous summary being evicted, please extract a concise version of the critical info from it.\n"
    "\n"
    "3. **Important details**: Enumerate specific files and code sections examined, modified, or created, as well as important plan files, GitHub issues/PR links, and Linear ticket IDs. For each item, include why it matters and any relevant names, data, configs, or facts discussed.\n"
    "   - **Preserve identifiers verbatim** (plan filename/path, exact URL, issue/PR number, ticket ID); do not paraphrase or truncate.\n"
    "   - **Preserve referenced identifiers unless explicitly resolved**: Keep exact URLs/IDs from the conversation unless there is clear evidence they are no longer relevant.\n"
    "   - Do not omit details likely to be referenced later.\n"
    "\n"
    "4. **Errors and fixes**: List all errors that you ran into, and how you fixed them. Pay special attention to specific user feedback that you received and record verbatim if useful.\n"
    "\n"
    "5. **Lookup hints**: For any detailed content (long lists, extensive data, specific conversations) that couldn't fit in the summary, note the topic and key terms that could be used to find it in message history later.\n"
    "\n"
    "Write in first person as a factual record of what occurred. Be thorough and detailed - the goal is to preserve enough context that the recent messages make sense and important information isn't lost to prevent duplicate work or repeated mistakes.\n"
    "\n"
    "Keep your summary under 300 words. Only output the summary."
)


def default_compaction_settings(llm_config: dict[str, Any]) -> dict[str, Any]:
    """The ``compaction_settings`` Letta's ``create_agent_async`` stores when none is given.

    ``CompactionSettings(model=<provider default or the agent's handle>).set_mode_specific_prompt()``,
    dumped in JSON mode (``sliding_window_percentage`` is the server's
    ``partial_evict_summarizer_percentage`` setting, 0.30 unless the operator changed it).
    """
    provider = llm_config.get("provider_name") or llm_config.get("model_endpoint_type")
    model = _SUMMARIZER_MODELS.get(str(provider)) or llm_config.get("handle")
    return {
        "model": model,
        "model_settings": None,
        "prompt": SLIDING_PROMPT,
        "prompt_acknowledgement": False,
        "clip_chars": 50000,
        "mode": "sliding_window",
        "sliding_window_percentage": 0.3,
    }


# Fields Letta's pydantic models add when they parse (and later dump) these JSON objects; an
# object missing them is stored with them by Letta's importer, so lifeboat's adds them too.
_EMBEDDING_DEFAULTS: dict[str, Any] = {
    "embedding_endpoint": None,
    "embedding_chunk_size": 300,
    "handle": None,
    "batch_size": 32,
    "azure_endpoint": None,
    "azure_version": None,
    "azure_deployment": None,
}
_CONTENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {"signature": None},
    "tool_call": {"signature": None},
    "reasoning": {"signature": None},
    "omitted_reasoning": {"signature": None},
    "summarized_reasoning": {"encrypted_content": None},
}
_TOOL_RETURN_DEFAULTS: dict[str, Any] = {
    "tool_call_id": None,
    "stdout": None,
    "stderr": None,
    "func_response": None,
}
_APPROVAL_DEFAULTS: dict[str, dict[str, Any]] = {
    "approval": {"reason": None},
    "tool": {"stdout": None, "stderr": None},
}


def _with_defaults(value: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    missing = {key: default for key, default in defaults.items() if key not in value}
    return {**value, **missing} if missing else value


def embedding_config(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """An ``EmbeddingConfig`` as Letta stores it (``model_dump(mode="json")``)."""
    return None if value is None else _with_defaults(value, _EMBEDDING_DEFAULTS)


def content_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_with_defaults(part, _CONTENT_DEFAULTS.get(str(part.get("type")), {})) for part in parts]


def tool_returns(returns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_with_defaults(item, _TOOL_RETURN_DEFAULTS) for item in returns]


def approvals(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for item in items:
        kind = str(item.get("type", "approval"))
        result.append(_with_defaults({"type": kind, **item}, _APPROVAL_DEFAULTS.get(kind, {})))
    return result
