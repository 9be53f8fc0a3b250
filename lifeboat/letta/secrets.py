"""Letta's secret columns and their encryption (docs/LETTA.md §10).

``<column>_enc`` holds base64(salt 16 B ‖ IV 12 B ‖ AES-256-GCM ciphertext ‖ tag 16 B) with the key
PBKDF2-HMAC-SHA256(LETTA_ENCRYPTION_KEY, salt, 100,000 iterations, 32 bytes). Without a key the
server writes the value in clear into the ``_enc`` column.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SALT_SIZE = 16
IV_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
PBKDF2_ITERATIONS = 100_000

# Prefixes of clear-text credentials that Letta never treats as ciphertext.
PLAINTEXT_PREFIXES = (
    "sk-", "pk-", "api-", "key-", "token-", "Bearer ", "xoxb-", "xoxp-",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "AKIA", "ABIA", "ACCA", "ASIA",
)  # fmt: skip


@dataclass(frozen=True)
class SecretColumn:
    table: str
    encrypted: str  # the ``_enc`` column
    legacy: str | None  # the old clear-text twin, if any
    dual_written: bool = False  # 0.16.8 still writes the clear-text twin on purpose


SECRET_COLUMNS: tuple[SecretColumn, ...] = (
    SecretColumn("providers", "api_key_enc", "api_key"),
    SecretColumn("providers", "access_key_enc", "access_key"),
    SecretColumn("sandbox_environment_variables", "value_enc", "value"),
    SecretColumn("agent_environment_variables", "value_enc", "value"),
    SecretColumn("mcp_server", "token_enc", "token", dual_written=True),
    SecretColumn("mcp_server", "custom_headers_enc", "custom_headers", dual_written=True),
    SecretColumn("mcp_oauth", "authorization_code_enc", "authorization_code", dual_written=True),
    SecretColumn("mcp_oauth", "access_token_enc", "access_token", dual_written=True),
    SecretColumn("mcp_oauth", "refresh_token_enc", "refresh_token", dual_written=True),
    SecretColumn("mcp_oauth", "client_secret_enc", "client_secret", dual_written=True),
)


class DecryptionError(ValueError):
    pass


@functools.lru_cache(maxsize=1024)
def derive_key(master_key: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", master_key.encode(), salt, PBKDF2_ITERATIONS, KEY_SIZE)


def looks_encrypted(value: str) -> bool:
    """Letta's heuristic: base64 of at least salt+iv+tag+1 bytes, not a known credential prefix."""
    if value.startswith(PLAINTEXT_PREFIXES):
        return False
    try:
        decoded = base64.b64decode(value)
    except (binascii.Error, ValueError):
        return False
    return len(decoded) >= SALT_SIZE + IV_SIZE + TAG_SIZE + 1


def encrypt(plaintext: str, master_key: str) -> str:
    """Encrypt as Letta does (tests use it to build rows the server can read)."""
    salt, iv = os.urandom(SALT_SIZE), os.urandom(IV_SIZE)
    sealed = AESGCM(derive_key(master_key, salt)).encrypt(iv, plaintext.encode(), None)
    return base64.b64encode(salt + iv + sealed).decode()


def decrypt(value: str, master_key: str) -> str:
    try:
        data = base64.b64decode(value)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError(f"not base64: {exc}") from None
    if len(data) < SALT_SIZE + IV_SIZE + TAG_SIZE:
        raise DecryptionError("too short to be Letta ciphertext")
    salt, iv, sealed = data[:SALT_SIZE], data[SALT_SIZE : SALT_SIZE + IV_SIZE], data[SALT_SIZE + IV_SIZE :]
    try:
        plaintext = AESGCM(derive_key(master_key, salt)).decrypt(iv, sealed, None)
    except InvalidTag:
        raise DecryptionError("authentication failed (wrong key or damaged value)") from None
    try:
        return plaintext.decode()
    except UnicodeDecodeError:
        raise DecryptionError("decrypted bytes are not UTF-8") from None
