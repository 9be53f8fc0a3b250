"""Letta V1 messages → Letta Code transcript entries (format ``pi-session-entry-jsonl``).

A transcript is JSON Lines: a ``session`` header, then one ``message`` entry per message,
each pointing to the previous one (``parentId``). The message inside an entry is a pi-ai
message: ``user`` (text/image parts), ``assistant`` (``thinking``, ``text`` and ``toolCall``
parts) or ``toolResult`` (one per tool call). Letta Code projects them back into the Letta
message types (user, assistant, reasoning, tool call, tool return) for ``letta messages``.

Mapping (one V1 row → one entry, the V1 id kept as the message id):

* ``user`` → user; ``assistant`` → assistant (reasoning → thinking, text, tool calls);
* ``tool``/``function`` → toolResult; a row holding several tool returns yields one toolResult
  per return (the first keeps the row's id, the others get ``<id>:return:<n>``);
* ``approval`` requests (tool calls) → assistant; approval responses → a user message stating
  the decision; ``summary`` → user;
* ``system`` rows are not transcript entries: Letta Code compiles its system prompt from the
  agent record and the memory files. Callers count them as left out.

Entry ids are derived from the message ids (8 hex digits of a hash), so the same input always
gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from lifeboat.letta_code.model import SourceMessage

SESSION_VERSION = 3
V1_API = "letta-v1"  # the "api"/"provider" of migrated assistant messages: never the current model's
TEXT_ROLES = ("user", "assistant", "tool", "function", "approval", "summary")


_PG_UTC = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(?:\+00(?::00)?|Z)")


def iso(value: str) -> str:
    """An ISO timestamp the way Letta Code writes them: UTC, milliseconds, ``Z``."""
    return stamp(value)[0]


def epoch_ms(value: str) -> int:
    return stamp(value)[1]


@lru_cache(maxsize=4096)
def stamp(value: str) -> tuple[str, int]:
    """(Letta Code's ISO form, epoch milliseconds) of a timestamp; PostgreSQL's UTC text form
    (``2026-12-03 23:29:10.732702+00``) takes a fast path."""
    match = _PG_UTC.fullmatch(value.strip())
    if match:
        day, clock, fraction = match.groups()
        millis = (fraction or "").ljust(3, "0")[:3]
        text = f"{day}T{clock}.{millis}Z"
        moment = datetime.fromisoformat(f"{day}T{clock}+00:00")
        return text, int(moment.timestamp()) * 1000 + int(millis)
    parsed = _parse(value).astimezone(UTC)
    text = parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text, int(parsed.timestamp() * 1000)


def _parse(value: str) -> datetime:
    text = value.strip().replace(" ", "T", 1)
    if "T" in text and len(text) > 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def entry_id(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:8]


def session_header(conversation_id: str, created_at: str, cwd: str) -> dict[str, Any]:
    return {
        "type": "session",
        "version": SESSION_VERSION,
        "id": conversation_id,
        "timestamp": created_at,
        "cwd": cwd,
    }


def entries(messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Session ``message`` entries for pi messages, chained by ``parentId``."""
    parent: str | None = None
    used: set[str] = set()
    for message in messages:
        ident = entry_id(message["id"])
        while ident in used:  # never in practice; keeps ids unique whatever the input
            ident = entry_id(ident + message["id"])
        used.add(ident)
        yield {
            "type": "message",
            "id": ident,
            "parentId": parent,
            "timestamp": message["metadata"]["created_at"],
            "message": message,
        }
        parent = ident


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows).encode()


def convert(message: SourceMessage, agent_id: str, conversation_id: str) -> list[dict[str, Any]]:
    """The pi messages for one V1 row ([] for system rows)."""
    created = iso(message.created_at)
    metadata = {
        "created_at": created,
        "updated_at": created,
        "agent_id": agent_id,
        "conversation_id": conversation_id,
    }
    base = {"id": message.id, "timestamp": epoch_ms(message.created_at)}
    role = message.role
    if role in ("tool", "function"):
        return _tool_results(message, base, metadata)
    if role == "assistant" or (role == "approval" and message.tool_calls):
        return [
            {
                **base,
                "role": "assistant",
                "content": _assistant_parts(message),
                **_assistant_fields(message),
                "metadata": metadata,
            }
        ]
    if role == "approval":
        return [
            {
                **base,
                "role": "user",
                "content": [{"type": "text", "text": approval_text(message)}],
                "metadata": metadata,
            }
        ]
    if role in ("user", "summary"):
        user = {**base, "role": "user", "content": _user_parts(message), "metadata": metadata}
        if message.otid:
            user["otid"] = message.otid
        return [user]
    return []


def texts(message: SourceMessage) -> list[str]:
    """The text parts of a V1 row's content (the legacy ``text`` column when there are none)."""
    found = [
        str(part.get("text"))
        for part in message.content
        if part.get("type") == "text" and part.get("text") is not None
    ]
    if not found and message.text:
        found = [message.text]
    return found


def approval_text(message: SourceMessage) -> str:
    decisions = []
    for approval in message.approvals or [{"approve": message.approve, "reason": message.denial_reason}]:
        verdict = "approved" if approval.get("approve") else "denied"
        reason = approval.get("reason") or approval.get("denial_reason")
        call = approval.get("tool_call_id")
        decisions.append(
            f"[tool call {call or ''} {verdict}{': ' + str(reason) if reason else ''}]".replace("  ", " ")
        )
    return "\n".join(texts(message) + decisions)


def _user_parts(message: SourceMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.content:
        kind = part.get("type")
        if kind == "text" and part.get("text") is not None:
            parts.append({"type": "text", "text": str(part["text"])})
        elif kind == "image" and isinstance(part.get("source"), dict) and part["source"].get("data"):
            source = part["source"]
            parts.append(
                {"type": "image", "mimeType": source.get("media_type") or "image/png", "data": source["data"]}
            )
    if not parts:
        parts = [{"type": "text", "text": text} for text in texts(message)] or [{"type": "text", "text": ""}]
    return parts


def _assistant_parts(message: SourceMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.content:
        kind = part.get("type")
        if kind == "reasoning" and part.get("reasoning"):
            parts.append({"type": "thinking", "thinking": str(part["reasoning"])})
        elif kind in ("omitted_reasoning", "redacted_reasoning"):
            parts.append({"type": "thinking", "thinking": "[reasoning not kept by the provider]"})
        elif kind == "text" and part.get("text") is not None:
            parts.append({"type": "text", "text": str(part["text"])})
    if not any(p["type"] == "text" for p in parts) and message.text and not message.content:
        parts.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        function = call.get("function") or {}
        parts.append(
            {
                "type": "toolCall",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "arguments": _arguments(function.get("arguments")),
            }
        )
    return parts


def _assistant_fields(message: SourceMessage) -> dict[str, Any]:
    return {
        "api": V1_API,
        "provider": V1_API,
        "model": message.model or "",
        "usage": _empty_usage(),
        "stopReason": "toolUse" if message.tool_calls else "stop",
    }


def _tool_results(
    message: SourceMessage, base: dict[str, Any], metadata: dict[str, Any]
) -> list[dict[str, Any]]:
    returns = message.tool_returns
    if len(returns) <= 1:
        status = returns[0].get("status") if returns else None
        text = "\n".join(texts(message))
        if not text and returns:
            text = str(returns[0].get("func_response") or "")
        call_id = message.tool_call_id or (returns[0].get("tool_call_id") if returns else None) or ""
        return [_tool_result(base, metadata, str(call_id), message.name, text, status == "error")]
    results = []
    for n, item in enumerate(returns):
        ident = base["id"] if n == 0 else f"{base['id']}:return:{n}"
        results.append(
            _tool_result(
                {**base, "id": ident},
                metadata,
                str(item.get("tool_call_id") or ""),
                message.name,
                str(item.get("func_response") or ""),
                item.get("status") == "error",
            )
        )
    return results


def _tool_result(
    base: dict[str, Any], metadata: dict[str, Any], call_id: str, name: str | None, text: str, is_error: bool
) -> dict[str, Any]:
    return {
        **base,
        "role": "toolResult",
        "toolCallId": call_id,
        "toolName": name or "",
        "content": [{"type": "text", "text": text}],
        "isError": is_error,
        "metadata": metadata,
    }


def _arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments as an object (Letta Code's rule: anything else becomes ``{"input": value}``)."""
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            value = raw
    return value if isinstance(value, dict) else {"input": value}


def _empty_usage() -> dict[str, Any]:
    zero = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}
    return {**zero, "totalTokens": 0, "cost": {**zero, "total": 0}}
