"""Talking to Letta's Redis from operations: connect from settings, invalidate after restores."""

from __future__ import annotations

from typing import Any

from lifeboat.errors import RedisUnavailable
from lifeboat.letta.redis_keys import STALE_AFTER_RESTORE, delete_matching
from lifeboat.settings import RedisTarget

__all__ = ["RedisUnavailable", "client", "invalidate_after_restore"]


def client(target: RedisTarget, *, decode_responses: bool = False) -> Any:
    """A redis-py client for Letta's Redis (5 s timeouts; not connected until first used)."""
    import redis

    make: Any = redis.Redis  # its stubs overload on a literal decode_responses
    return make(
        host=target.host,
        port=target.port,
        decode_responses=decode_responses,
        socket_timeout=5,
        socket_connect_timeout=5,
    )


def invalidate_after_restore(
    target: RedisTarget | None, patterns: tuple[str, ...] = STALE_AFTER_RESTORE
) -> int | None:
    """Drop Letta's keys that may point at runs/agents/users the restore changed. None without Redis."""
    if target is None:
        return None
    import redis

    try:
        return delete_matching(client(target), patterns)
    except redis.RedisError as exc:
        raise RedisUnavailable(f"cannot reach Redis at {target.host}:{target.port}: {exc}") from exc
