"""Letta's own per-agent Redis locks, taken from outside Letta while an agent's rows change.

Letta serialises requests for one agent (or one conversation) with a redis-py ``Lock`` on
``conversation:lock:<agent or conversation id>`` (:func:`lifeboat.letta.redis_keys.agent_lock_key`):
``SET NX PX`` with a random token. Taking the same lock the same way makes a request for the
agent get Letta's usual 409 "busy" instead of writing into rows that are being replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from lifeboat.errors import DatabaseError, UnsafeRestore
from lifeboat.letta import redis_keys

LOCK_SECONDS = 60  # Letta uses 300 s; ours is extended as the work goes, so a crash frees it sooner
LOCK_WAIT_SECONDS = 2.0


class AgentLocks:
    """Hold Letta's locks on ``keys`` for the duration of a ``with`` block.

    ``client`` is a redis-py client for Letta's Redis (None: Letta runs without Redis, so there is
    no lock to take); ``where`` names it in messages. A lock Letta holds is a refusal
    (:class:`UnsafeRestore`) unless ``force``; an unreachable Redis is a :class:`DatabaseError`.
    """

    def __init__(self, client: Any | None, keys: list[str], force: bool, where: str = "") -> None:
        self.client: Any = client
        self.keys = keys
        self.force = force
        self.where = where
        self.locks: list[Any] = []
        self.note: str | None = None

    def __enter__(self) -> AgentLocks:
        if self.client is None:
            self.note = "no Redis configured (LETTA_REDIS_HOST): Letta runs without locks, none taken"
            return self
        import redis

        try:
            for key in self.keys:
                self._take(key)
        except redis.RedisError as exc:
            self._release()
            raise DatabaseError(f"cannot reach Letta's Redis at {self.where}: {exc}") from exc
        except BaseException:
            self._release()
            raise
        self.note = f"held {len(self.locks)} Letta lock(s) while applying"
        return self

    def _take(self, key: str) -> None:
        lock = self.client.lock(key, timeout=LOCK_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS)
        if lock.acquire(blocking=True):
            self.locks.append(lock)
        elif self.force:
            self.note = f"{key} is held by Letta; went ahead without it (--force)"
        else:
            raise UnsafeRestore(f"Letta holds {key} (a request is running); retry later, or pass --force")

    def extend(self) -> None:
        """Reset the locks' expiry (call it as the work goes)."""
        for lock in self.locks:
            try:
                lock.reacquire()
            except Exception:  # a lost lock only weakens the guarantee; the transaction is intact
                self.note = "a Letta lock expired while applying"

    def invalidate(self, agent_ids: Iterable[str], run_ids: Iterable[str]) -> int:
        """Drop the agents' keys (latest run pointer, memory-repo lock, run streams)."""
        if self.client is None:
            return 0
        keys = [k for a in agent_ids for k in redis_keys.agent_keys(a)]
        keys += [k for r in run_ids for k in redis_keys.run_keys(r)]
        return int(self.client.delete(*keys)) if keys else 0

    def _release(self) -> None:
        for lock in self.locks:
            with contextlib.suppress(Exception):  # expired: nothing to release
                lock.release()
        self.locks = []

    def __exit__(self, *exc: object) -> None:
        self._release()
