"""The passphrase side of a repository's keys: Argon2id parameters, their bounds, and a key file's
readable fields (``parse_key_file``); :mod:`lifeboat.repo.crypto` seals with the key derived here.

Apart so that it imports little (argon2, no AEAD or hash library, no pydantic): the CLI starts
deriving a local repository's key before it has imported the rest (``KdfParams.derive_ahead``).
"""

from __future__ import annotations

import base64
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw

from lifeboat.errors import CorruptRepository

KEY_SIZE = 32
CIPHER_NAME = "aes-256-gcm"
# Bounds on a key file's argon2id parameters: anyone who can write the storage can plant a key
# file, and unbounded parameters would make every open allocate terabytes or spin for hours.
MAX_TIME_COST = 10
MAX_MEMORY_COST = 4 * 1024 * 1024  # KiB: 4 GiB
MAX_PARALLELISM = 16
MAX_KEY_FILE_SIZE = 64 * 1024


@dataclass(frozen=True)
class KdfParams:
    """argon2id parameters; ``memory_cost`` in KiB. The defaults are RFC 9106's second recommended
    option (t=3, 64 MiB) with 2 lanes where the RFC has 4. The work per guess, an attacker's as
    ours, is set by time and memory; lanes only let it spread over cores, and the machines lifeboat
    is sized for have 2. Each key file records its own parameters: a new default leaves existing
    key files as they are."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024
    parallelism: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.time_cost <= MAX_TIME_COST:
            raise ValueError(f"argon2 time_cost {self.time_cost} is outside 1..{MAX_TIME_COST}")
        if not 1 <= self.parallelism <= MAX_PARALLELISM:
            raise ValueError(f"argon2 parallelism {self.parallelism} is outside 1..{MAX_PARALLELISM}")
        if not 8 * self.parallelism <= self.memory_cost <= MAX_MEMORY_COST:
            raise ValueError(
                f"argon2 memory_cost {self.memory_cost} KiB is outside {8 * self.parallelism}..{MAX_MEMORY_COST}"
            )

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        """The key for ``passphrase`` and ``salt``: the result of :meth:`derive_ahead` with these
        very inputs when one was started (waited for), else derived now."""
        with _AHEAD_LOCK:
            ahead = _AHEAD.pop((self, salt, passphrase), None)
        if ahead is not None and (key := ahead.result()) is not None:
            return key
        return self._derive(passphrase, salt)

    def derive_ahead(self, passphrase: str, salt: bytes) -> None:
        """Start deriving on a thread, for a :meth:`derive` with the same inputs to take later.

        The CLI starts the derivation of a local repository's key before it has imported what the
        command needs (~0.1 s sooner), so the Argon2id work, C code without the GIL, runs on the
        core those imports leave free. Only the same (parameters, salt, passphrase) take its
        result, so a guess at the wrong key file costs CPU, never a wrong key.
        """
        future: Future[bytes | None] = Future()
        with _AHEAD_LOCK:
            if _AHEAD.setdefault((self, salt, passphrase), future) is not future:
                return

        def run() -> None:
            try:
                future.set_result(self._derive(passphrase, salt))
            except Exception:  # derive() then derives itself and reports what goes wrong
                future.set_result(None)

        threading.Thread(target=run, name="lifeboat-derive-ahead", daemon=True).start()

    def _derive(self, passphrase: str, salt: bytes) -> bytes:
        return hash_secret_raw(
            secret=passphrase.encode("utf-8"),
            salt=salt,
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=KEY_SIZE,
            type=Type.ID,
        )


# Derivations started by KdfParams.derive_ahead and not yet taken: (params, salt, passphrase) -> key.
_AHEAD: dict[tuple[KdfParams, bytes, str], Future[bytes | None]] = {}
_AHEAD_LOCK = threading.Lock()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def parse_key_file(document: Any) -> tuple[KdfParams, bytes, bytes]:
    """(argon2 parameters, salt, sealed secret) of a well-formed key file; ``CorruptRepository`` otherwise."""
    try:
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        if document.get("kdf") != "argon2id" or document.get("cipher") != CIPHER_NAME:
            raise ValueError(f"unsupported kdf {document.get('kdf')!r} or cipher {document.get('cipher')!r}")
        params = KdfParams(
            time_cost=_integer(document["time_cost"]),
            memory_cost=_integer(document["memory_cost"]),
            parallelism=_integer(document["parallelism"]),
        )
        salt, sealed = b64decode(document["salt"]), b64decode(document["data"])
        if not 8 <= len(salt) <= 64:
            raise ValueError(f"salt of {len(salt)} bytes")
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptRepository(f"key file cannot be decoded: {exc}") from exc
    return params, salt, sealed


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value
