"""The repository: blobs, packs, index, snapshots, locks, storage backends. Knows nothing of Postgres.

Typical use by the operations layer::

    repo = Repository.open("s3://bucket/prefix", passphrase)
    with repo.lock(), repo.writer() as writer:          # shared lock; writer flushes on exit
        stream = writer.write_stream("public.agents", batches, {"columns": [...]})
    repo.save_snapshot(Snapshot(streams=[stream], documents={...}))   # visible from here on

See docs/FORMAT.md for the on-disk format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeboat.lazy import lazy_exports

if TYPE_CHECKING:
    from lifeboat.repo.backends import Backend, FileInfo, LocalBackend, S3Backend, open_backend
    from lifeboat.repo.check import CheckReport, Finding
    from lifeboat.repo.chunker import Chunk, RecordChunker
    from lifeboat.repo.config import FORMAT_VERSION, ChunkerParams, RepoConfig
    from lifeboat.repo.kdf import KdfParams
    from lifeboat.repo.locks import LockInfo, RepositoryLock
    from lifeboat.repo.manifest import BlobRef, Snapshot, Stream
    from lifeboat.repo.repository import LATEST, Repository
    from lifeboat.repo.writer import RecordBatch, RepositoryWriter, StreamWriter, WriteStats

# Each public name and the module defining it: imported on first use (PEP 562), so a command that
# only reads snapshots loads neither the checker nor the chunker (lifeboat.pg does the same).
_EXPORTS = {
    "Backend": "lifeboat.repo.backends",
    "BlobRef": "lifeboat.repo.manifest",
    "CheckReport": "lifeboat.repo.check",
    "Chunk": "lifeboat.repo.chunker",
    "ChunkerParams": "lifeboat.repo.config",
    "FORMAT_VERSION": "lifeboat.repo.config",
    "FileInfo": "lifeboat.repo.backends",
    "Finding": "lifeboat.repo.check",
    "KdfParams": "lifeboat.repo.kdf",
    "LATEST": "lifeboat.repo.repository",
    "LocalBackend": "lifeboat.repo.backends",
    "LockInfo": "lifeboat.repo.locks",
    "RecordBatch": "lifeboat.repo.writer",
    "RecordChunker": "lifeboat.repo.chunker",
    "RepoConfig": "lifeboat.repo.config",
    "Repository": "lifeboat.repo.repository",
    "RepositoryLock": "lifeboat.repo.locks",
    "RepositoryWriter": "lifeboat.repo.writer",
    "S3Backend": "lifeboat.repo.backends",
    "Snapshot": "lifeboat.repo.manifest",
    "Stream": "lifeboat.repo.manifest",
    "StreamWriter": "lifeboat.repo.writer",
    "WriteStats": "lifeboat.repo.writer",
    "open_backend": "lifeboat.repo.backends",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "FORMAT_VERSION",
    "LATEST",
    "Backend",
    "BlobRef",
    "CheckReport",
    "Chunk",
    "ChunkerParams",
    "FileInfo",
    "Finding",
    "KdfParams",
    "LocalBackend",
    "LockInfo",
    "RecordBatch",
    "RecordChunker",
    "RepoConfig",
    "Repository",
    "RepositoryLock",
    "RepositoryWriter",
    "S3Backend",
    "Snapshot",
    "Stream",
    "StreamWriter",
    "WriteStats",
    "open_backend",
]
