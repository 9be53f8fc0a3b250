"""Writing agent secrets the way Letta does (DATA_MODEL.md §9, ``letta/helpers/crypto_utils.py``).

``agent_environment_variables.value_enc`` holds base64(salt 16 B ‖ IV 12 B ‖ AES-256-GCM
ciphertext ‖ tag 16 B) with the key PBKDF2-HMAC-SHA256(LETTA_ENCRYPTION_KEY, salt, 100,000
iterations). Without a key Letta stores the plaintext in ``value_enc``; so do we. The legacy
``value`` column is written as ``''``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifeboat.errors import UsageError

PBKDF2_ITERATIONS = 100_000
SALT_SIZE = 16
IV_SIZE = 12


def encryption_key(env: dict[str, str] | None = None) -> str | None:
    """LETTA_ENCRYPTION_KEY as the Letta server reads it (case-insensitive), or None."""
    env = dict(os.environ) if env is None else env
    lower = {key.lower(): value for key, value in env.items()}
    return lower.get("letta_encryption_key") or None


def encrypt(plaintext: str, master_key: str | None) -> str:
    """The ``value_enc`` Letta would store for ``plaintext``."""
    if not master_key:
        return plaintext
    salt, iv = os.urandom(SALT_SIZE), os.urandom(IV_SIZE)
    key = hashlib.pbkdf2_hmac("sha256", master_key.encode(), salt, PBKDF2_ITERATIONS, dklen=32)
    sealed = AESGCM(key).encrypt(iv, plaintext.encode(), None)  # ciphertext ‖ tag
    return base64.b64encode(salt + iv + sealed).decode("ascii")


def decrypt(value: str, master_key: str) -> str:
    """Inverse of :func:`encrypt` (tests and verification)."""
    raw = base64.b64decode(value)
    salt, iv, sealed = raw[:SALT_SIZE], raw[SALT_SIZE : SALT_SIZE + IV_SIZE], raw[SALT_SIZE + IV_SIZE :]
    key = hashlib.pbkdf2_hmac("sha256", master_key.encode(), salt, PBKDF2_ITERATIONS, dklen=32)
    return AESGCM(key).decrypt(iv, sealed, None).decode()


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
