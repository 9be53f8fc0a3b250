"""Keys and sealing: AES-256-GCM with random nonces, master keys wrapped by an argon2id passphrase key.

Two master keys per repository:
  * ``encryption``: the AES-256-GCM key for every sealed byte (blobs, pack trailers, index files,
    manifests, locks);
  * ``id``: the BLAKE2b key for blob ids (keyed hash of the plaintext) and the seed of the
    chunker's boundary hash, so neither ids nor cut points can be predicted from known data.

An unencrypted repository (explicit opt-out) has no ``encryption`` key: ``Sealer`` then passes
bytes through, and the ``id`` key lives in the plaintext config.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifeboat.errors import CorruptRepository, WrongPassphrase

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE
CIPHER_NAME = "aes-256-gcm"
KEY_FILE_AAD = b"lifeboat:key"


class DecryptionFailed(Exception):
    """The AEAD tag did not verify: wrong key, or the bytes were changed."""


@dataclass(frozen=True)
class KdfParams:
    """argon2id parameters; ``memory_cost`` in KiB. Defaults follow RFC 9106's second recommendation."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024
    parallelism: int = 2

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        return hash_secret_raw(
            secret=passphrase.encode("utf-8"),
            salt=salt,
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=KEY_SIZE,
            type=Type.ID,
        )


@dataclass(frozen=True)
class MasterKeys:
    encryption: bytes | None
    id_key: bytes

    @classmethod
    def generate(cls, *, encrypt: bool) -> MasterKeys:
        return cls(encryption=os.urandom(KEY_SIZE) if encrypt else None, id_key=os.urandom(KEY_SIZE))

    def blob_id(self, plaintext: bytes) -> str:
        """The content address of a blob: keyed BLAKE2b-256 of its plaintext, hex."""
        return hashlib.blake2b(plaintext, key=self.id_key, digest_size=32).hexdigest()

    def chunker_seed(self) -> int:
        """A 32-bit secret that seeds the chunker's per-record CRC32, derived from the id key."""
        digest = hashlib.blake2b(b"lifeboat:chunker", key=self.id_key, digest_size=4).digest()
        return int.from_bytes(digest, "little")


class Sealer:
    """Seal/open byte strings: ``nonce(12) || AES-256-GCM(ciphertext || tag)``; identity when unencrypted."""

    def __init__(self, key: bytes | None) -> None:
        self._aead = AESGCM(key) if key is not None else None

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if self._aead is None:
            return sealed
        if len(sealed) < SEAL_OVERHEAD:
            raise DecryptionFailed("sealed data shorter than nonce and tag")
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad)
        except InvalidTag as exc:
            raise DecryptionFailed("authentication tag mismatch") from exc


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def wrap_keys(keys: MasterKeys, passphrase: str, params: KdfParams) -> dict[str, Any]:
    """A key file document: the master keys sealed under an argon2id key derived from ``passphrase``."""
    if keys.encryption is None:
        raise ValueError("an unencrypted repository has no key file")
    salt = os.urandom(16)
    wrapping_key = params.derive(passphrase, salt)
    secret = json.dumps({"encryption": b64encode(keys.encryption), "id": b64encode(keys.id_key)}).encode()
    return {
        "version": 1,
        "kdf": "argon2id",
        "time_cost": params.time_cost,
        "memory_cost": params.memory_cost,
        "parallelism": params.parallelism,
        "salt": b64encode(salt),
        "cipher": CIPHER_NAME,
        "data": b64encode(Sealer(wrapping_key).seal(secret, KEY_FILE_AAD)),
        "created": datetime.now(UTC).isoformat(),
        "hostname": socket.gethostname(),
    }


def unwrap_keys(document: dict[str, Any], passphrase: str) -> MasterKeys:
    """Decrypt a key file document; a tag mismatch means the passphrase is wrong."""
    try:
        if document.get("kdf") != "argon2id" or document.get("cipher") != CIPHER_NAME:
            raise CorruptRepository(f"unsupported key file (kdf={document.get('kdf')!r})")
        params = KdfParams(
            time_cost=int(document["time_cost"]),
            memory_cost=int(document["memory_cost"]),
            parallelism=int(document["parallelism"]),
        )
        salt, sealed = b64decode(document["salt"]), b64decode(document["data"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptRepository(f"key file cannot be decoded: {exc}") from exc
    try:
        secret = Sealer(params.derive(passphrase, salt)).open(sealed, KEY_FILE_AAD)
    except DecryptionFailed as exc:
        raise WrongPassphrase("wrong passphrase: it does not unlock any key of this repository") from exc
    payload = json.loads(secret)
    return MasterKeys(encryption=b64decode(payload["encryption"]), id_key=b64decode(payload["id"]))
