"""The repository config (the first file any reader opens), its format versions, and the file layout.

Format versions (docs/FORMAT.md §13): 1 = config in clear JSON, index files sealed under one
associated-data string; 2 = config sealed under the master key (only ``format``, ``version`` and
``encryption`` stay readable outside), key files that record the version, index files bound to
their names; 3 = version 2 with keyed BLAKE3 blob ids instead of keyed BLAKE2b.
``SUPPORTED_VERSIONS`` lists what this code reads; ``FORMAT_VERSION`` is what ``init`` writes;
``UPGRADE_VERSION`` is what ``upgrade-repository`` converts older repositories to in place.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT_NAME = "lifeboat-repository"
# The keyed hash of blob ids (§5) of each format version. A version's hash never changes: its
# stored ids, and every later backup's deduplication against them, depend on it. Everything that
# computes an id asks the repository's keys (``MasterKeys.blob_id``), bound to this in one place.
IdHash = Literal["blake2b", "blake3"]
BLOB_ID_HASH: dict[int, IdHash] = {1: "blake2b", 2: "blake2b", 3: "blake3"}
SUPPORTED_VERSIONS = tuple(BLOB_ID_HASH)
FORMAT_VERSION = 3
# Ids cannot change in place (every pack, index file and manifest names blobs by them), so an
# upgrade stops at the newest version with the same id hash as version 1; a repository with
# BLAKE3 ids is a new one (`init`, then `copy`, which stores every blob under the target's id).
UPGRADE_VERSION = 2
MANIFEST_VERSION = 1  # the snapshot manifest's own format (§8), unchanged by versions 2 and 3

CONFIG_FILE = "config"
KEYS_DIR = "keys/"
DATA_DIR = "data/"
INDEX_DIR = "index/"
SNAPSHOTS_DIR = "snapshots/"
LOCKS_DIR = "locks/"
DAMAGED_DIR = "damaged/"  # marks left by `repair snapshots` on snapshots kept although damaged

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
# Bounds on values a config may hold: a reader of an unauthenticated (version 1) config must not
# let the storage make it allocate without limit.
MAX_BLOB_SIZE = 256 * MiB
MAX_PACK_SIZE = 1 * GiB


class ChunkerParams(BaseModel):
    """Blob size bounds for the record chunker (bytes of plaintext)."""

    model_config = ConfigDict(frozen=True)

    min_size: int = Field(default=256 * KiB, gt=0)
    avg_size: int = Field(default=1 * MiB, gt=0)
    max_size: int = Field(default=4 * MiB, gt=0, le=MAX_BLOB_SIZE)

    @model_validator(mode="after")
    def _ordered(self) -> ChunkerParams:
        if not self.min_size < self.avg_size <= self.max_size:
            raise ValueError("chunker sizes must satisfy min_size < avg_size <= max_size")
        return self


class RepoConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: Literal["lifeboat-repository"] = "lifeboat-repository"
    version: int = Field(default=FORMAT_VERSION, ge=1, le=max(SUPPORTED_VERSIONS))
    id: str = Field(default_factory=lambda: secrets.token_hex(16))
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    encryption: Literal["aes-256-gcm", "none"] = "aes-256-gcm"
    compression: Literal["zstd"] = "zstd"
    chunker: ChunkerParams = ChunkerParams()
    pack_size: int = Field(default=32 * MiB, gt=0, le=MAX_PACK_SIZE)
    # Only in unencrypted repositories: the key of blob ids, base64 (public by design there).
    id_key: str | None = None

    @property
    def encrypted(self) -> bool:
        return self.encryption != "none"


def pack_name(pack_id: str) -> str:
    return f"{DATA_DIR}{pack_id[:2]}/{pack_id}"


def index_name(index_id: str) -> str:
    return f"{INDEX_DIR}{index_id}"


def snapshot_name(snapshot_id: str) -> str:
    return f"{SNAPSHOTS_DIR}{snapshot_id}"


def lock_name(lock_id: str) -> str:
    return f"{LOCKS_DIR}{lock_id}"


def key_name(key_id: str) -> str:
    return f"{KEYS_DIR}{key_id}"


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]
