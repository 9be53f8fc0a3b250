"""Talking to Letta's Redis from operations: connect from settings, invalidate after restores."""

from __future__ import annotations

from lifeboat.errors import LifeboatError
from lifeboat.letta.redis_keys import STALE_AFTER_RESTORE, delete_matching
from lifeboat.settings import RedisTarget


class RedisUnavailable(LifeboatError):
    exit_code = 7


def client(target: RedisTarget):
    import redis

    return redis.Redis(host=target.host, port=target.port, socket_timeout=5, socket_connect_timeout=5)


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
