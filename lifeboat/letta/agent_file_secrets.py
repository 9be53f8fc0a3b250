"""Agent secrets in and out of agent files (docs/LETTA.md §7, §10).

Agent files never carry secret values (Letta blanks them on export); ``--secrets FILE`` supplies
them on import. ``value_enc`` is written the way Letta writes it: encrypted with
LETTA_ENCRYPTION_KEY (:mod:`lifeboat.letta.secrets`) when the key is set, otherwise the
plaintext itself; the legacy ``value`` column is ``''``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lifeboat.errors import UsageError
from lifeboat.letta import secrets


def encryption_key(env: dict[str, str] | None = None) -> str | None:
    """LETTA_ENCRYPTION_KEY as the Letta server reads it (case-insensitive), or None."""
    env = dict(os.environ) if env is None else env
    lower = {key.lower(): value for key, value in env.items()}
    return lower.get("letta_encryption_key") or None


def value_enc(plaintext: str, master_key: str | None) -> str:
    """The ``value_enc`` Letta would store for ``plaintext``."""
    return secrets.encrypt(plaintext, master_key) if master_key else plaintext


def load_secrets(path: Path) -> dict[str, str]:
    """A ``--secrets`` file: a JSON object of environment variable name → value."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read secrets file {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise UsageError(f"secrets file {path} must be a JSON object of strings")
    if any("\x00" in k or "\x00" in v for k, v in data.items()):
        raise UsageError(f"secrets file {path} contains NUL characters")
    return data
