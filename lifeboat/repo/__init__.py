"""The repository: blobs, packs, index, snapshots, locks, storage backends. Knows nothing of Postgres.

Typical use by the operations layer::

    repo = Repository.open("s3://bucket/prefix", passphrase)
    with repo.lock(), repo.writer() as writer:          # shared lock; writer flushes on exit
        stream = writer.write_stream("public.agents", batches, {"columns": [...]})
    repo.save_snapshot(Snapshot(streams=[stream], documents={...}))   # visible from here on

See docs/FORMAT.md for the on-disk format.
"""

from lifeboat.repo.backends import Backend, FileInfo, LocalBackend, S3Backend, open_backend
from lifeboat.repo.check import CheckReport, Finding
from lifeboat.repo.chunker import Chunk, RecordChunker
from lifeboat.repo.config import FORMAT_VERSION, ChunkerParams, RepoConfig
from lifeboat.repo.crypto import KdfParams
from lifeboat.repo.locks import LockInfo, RepositoryLock
from lifeboat.repo.manifest import BlobRef, Snapshot, Stream
from lifeboat.repo.repository import LATEST, Repository
from lifeboat.repo.writer import RecordBatch, RepositoryWriter, StreamWriter, WriteStats

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
