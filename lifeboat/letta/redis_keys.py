"""Letta's Redis keys (docs/LETTA.md §8) and what to invalidate after a restore."""

from __future__ import annotations

# Keys that reference run/user/agent ids and may be wrong after a database restore.
STALE_AFTER_RESTORE = (
    "conversation:lock:*",
    "otid:run:*",
    "sse:run:*",
    "agent:send_message:run_id:*",
    "letta_cache:actor_id:*",
    "memory_repo:lock:*",
)


def agent_lock_key(agent_id: str) -> str:
    """Letta's per-conversation lock; the default conversation uses the agent id."""
    return f"conversation:lock:{agent_id}"


def agent_keys(agent_id: str) -> tuple[str, ...]:
    """Keys tied to one agent, to delete after restoring it."""
    return (
        f"agent:send_message:run_id:{agent_id}",
        f"memory_repo:lock:{agent_id}",
    )


def run_keys(run_id: str) -> tuple[str, ...]:
    return (f"sse:run:{run_id}",)


def delete_matching(client: object, patterns: tuple[str, ...] = STALE_AFTER_RESTORE) -> int:
    """Delete every key matching ``patterns`` (SCAN, never KEYS); returns how many were removed.

    ``client`` is a ``redis.Redis``; typed loosely so this module needs no Redis import.
    """
    removed = 0
    for pattern in patterns:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):  # type: ignore[attr-defined]
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.delete(*batch)  # type: ignore[attr-defined]
                batch = []
        if batch:
            removed += client.delete(*batch)  # type: ignore[attr-defined]
    return removed
