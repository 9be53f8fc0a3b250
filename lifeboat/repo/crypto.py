"""Keys and sealing: AES-256-GCM with random nonces, master keys wrapped by an argon2id passphrase key.

Two master keys per repository:
  * ``encryption``: the AES-256-GCM key for every sealed byte (blobs, pack trailers, index files,
    manifests, locks);
  * ``id``: the key of blob ids (a keyed hash of the plaintext: BLAKE2b-256 in format versions 1
    and 2, BLAKE3 from version 3; ``config.BLOB_ID_HASH``) and the seed of the chunker's
    boundary hash, so neither ids nor cut points can be predicted from known data.

An unencrypted repository (explicit opt-out) has no ``encryption`` key: ``Sealer`` then passes
bytes through, and the ``id`` key lives in the plaintext config.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifeboat.errors import WrongPassphrase
from lifeboat.repo.config import BLOB_ID_HASH, IdHash
from lifeboat.repo.kdf import CIPHER_NAME, KEY_SIZE, KdfParams, b64decode, b64encode, parse_key_file

NONCE_SIZE = 12
TAG_SIZE = 16
SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE
KEY_FILE_AAD = b"lifeboat:key"


class DecryptionFailed(Exception):
    """The AEAD tag did not verify: wrong key, or the bytes were changed."""


def _blake2b_id(key: bytes, plaintext: bytes) -> str:
    return hashlib.blake2b(plaintext, key=key, digest_size=32).hexdigest()


def _blake3_id(key: bytes, plaintext: bytes) -> str:
    # One thread (the default): the writer already hashes blobs on several threads at once.
    return blake3.blake3(plaintext, key=key).hexdigest()


# Measured on the 2-core test machine, 1 MiB buffers, one thread: BLAKE2b ~945 MB/s, BLAKE3 ~6400 MB/s.
ID_HASHES: dict[IdHash, Callable[[bytes, bytes], str]] = {"blake2b": _blake2b_id, "blake3": _blake3_id}


@dataclass(frozen=True)
class MasterKeys:
    """The repository's keys. ``min_version``: the lowest repository format version these keys may
    open (from a version-2 key file; 1 for keys from a version-1 key file), so a config rolled
    back to an older format is refused.

    ``id_hash`` is the blob-id hash of the repository's (authenticated) format version, set by
    ``for_format`` when the repository opens; keys not bound to a format compute no ids."""

    encryption: bytes | None
    id_key: bytes
    min_version: int = field(default=1, compare=False)
    # A copy of the repository's settings (the config's sealed part) from a version-2 key file:
    # what ``repair config`` rebuilds a damaged config from.
    settings: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    id_hash: IdHash | None = field(default=None, compare=False)

    @classmethod
    def generate(cls, *, encrypt: bool) -> MasterKeys:
        return cls(encryption=os.urandom(KEY_SIZE) if encrypt else None, id_key=os.urandom(KEY_SIZE))

    def for_format(self, version: int) -> MasterKeys:
        """These keys computing blob ids with the hash of format ``version`` (docs/FORMAT.md §5, §13)."""
        return replace(self, id_hash=BLOB_ID_HASH[version])

    def blob_id(self, plaintext: bytes) -> str:
        """The content address of a blob: the keyed hash of its plaintext (``id_hash``), 32 bytes, hex."""
        if self.id_hash is None:
            raise RuntimeError("blob ids need keys bound to a repository format (MasterKeys.for_format)")
        return ID_HASHES[self.id_hash](self.id_key, plaintext)

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


def wrap_keys(
    keys: MasterKeys,
    passphrase: str,
    params: KdfParams,
    *,
    repository_version: int = 1,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A key file document: the master keys sealed under an argon2id key derived from ``passphrase``.

    ``repository_version`` >= 2 writes a version-2 key file whose sealed secret also records that
    version (``min_version``), so these keys refuse to open a config claiming an older format,
    and a copy of the repository ``settings`` when given.
    """
    if keys.encryption is None:
        raise ValueError("an unencrypted repository has no key file")
    salt = os.urandom(16)
    wrapping_key = params.derive(passphrase, salt)
    payload: dict[str, Any] = {"encryption": b64encode(keys.encryption), "id": b64encode(keys.id_key)}
    if repository_version >= 2:
        payload["min_version"] = repository_version
        if settings is not None:
            payload["config"] = settings
    secret = json.dumps(payload).encode()
    return {
        "version": 2 if repository_version >= 2 else 1,
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


def unwrap_keys(document: Any, passphrase: str) -> MasterKeys:
    """Decrypt a key file document; a tag mismatch means the passphrase is wrong.

    A document that is not a well-formed key file (unknown kdf, parameters out of bounds, bad
    base64) raises ``CorruptRepository`` *before* any key derivation runs.
    """
    params, salt, sealed = parse_key_file(document)
    try:
        secret = Sealer(params.derive(passphrase, salt)).open(sealed, KEY_FILE_AAD)
    except DecryptionFailed as exc:
        raise WrongPassphrase("wrong passphrase: it does not unlock any key of this repository") from exc
    payload = json.loads(secret)
    settings = payload.get("config")
    return MasterKeys(
        encryption=b64decode(payload["encryption"]),
        id_key=b64decode(payload["id"]),
        min_version=int(payload.get("min_version", 1)),
        settings=settings if isinstance(settings, dict) else None,
    )
