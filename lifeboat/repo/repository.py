"""The repository: open/init, blobs in, blobs out, snapshots, locks, check.

Thread-safety: a ``Repository`` may be shared by threads. Reads (``read_blob``, snapshot
loading) are safe concurrently; ``writer()`` returns a thread-safe writer. Methods that change
the set of snapshots are atomic per call (one file put or delete).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import zstandard

from lifeboat.errors import (
    CorruptBlob,
    CorruptRepository,
    SnapshotNotFound,
    UsageError,
)
from lifeboat.repo.backends import Backend, open_backend
from lifeboat.repo.blobs import compress, decode_blob
from lifeboat.repo.config import (
    BLOB_ID_HASH,
    CONFIG_FILE,
    DATA_DIR,
    FORMAT_VERSION,
    INDEX_DIR,
    SUPPORTED_VERSIONS,
    ChunkerParams,
    RepoConfig,
    basename,
    index_name,
    pack_name,
    snapshot_name,
)
from lifeboat.repo.crypto import DecryptionFailed, MasterKeys, Sealer
from lifeboat.repo.index import Index, IndexFile, PackEntry, decode_index_file, encode_index, superseded
from lifeboat.repo.kdf import KdfParams, b64decode, b64encode
from lifeboat.repo.keys import (
    check_init_target,
    encode_config,
    encrypted_config,
    read_config_document,
    unencrypted_config,
    unlock,
    write_key_file,
)
from lifeboat.repo.locks import LockInfo, LockStore, RepositoryLock
from lifeboat.repo.manifest import Snapshot, Stream
from lifeboat.repo.snapshot_files import (
    LATEST,
    SnapshotFiles,
    checked_snapshot,
    decode_manifest,
    snapshot_aad,
)
from lifeboat.repo.writer import RepositoryWriter

# Also imported from here: the snapshot-file helpers (lifeboat.repo.snapshot_files).
__all__ = ["LATEST", "Repository", "checked_snapshot", "decode_manifest", "snapshot_aad", "split_records"]

if TYPE_CHECKING:
    from lifeboat.repo.check import CheckReport
    from lifeboat.repo.maintenance import RebuildReport

log = logging.getLogger(__name__)


class Repository(SnapshotFiles):
    """An opened repository. Create with ``Repository.init`` or ``Repository.open``."""

    def __init__(self, backend: Backend, config: RepoConfig, keys: MasterKeys) -> None:
        self.backend = backend
        self.config = config
        self.keys = keys.for_format(config.version)  # the one place the blob-id hash is chosen
        self.sealer = Sealer(keys.encryption)
        if config.encrypted and not self.sealer.encrypted:
            raise CorruptRepository("encrypted repository opened without its encryption key")  # fail closed
        self.locks = LockStore(backend, self.sealer)
        self.key_file: str | None = None  # the key file the passphrase opened (encrypted repositories)
        self._index: Index | None = None  # loaded on first use: listing snapshots does not need it
        self._index_loading = threading.Lock()

    @property
    def index(self) -> Index:
        """The in-memory index (every index file), read on first use."""
        if self._index is None:
            with self._index_loading:
                if self._index is None:
                    self.load_index()
        assert self._index is not None
        return self._index

    # -- creation and opening ------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        location: str | os.PathLike[str] | Backend,
        passphrase: str | None,
        *,
        encrypt: bool = True,
        chunker: ChunkerParams | None = None,
        pack_size: int | None = None,
        kdf: KdfParams | None = None,
        share_ids_with: Repository | None = None,
        version: int = FORMAT_VERSION,
    ) -> Repository:
        """Create a new repository. Encrypted unless ``encrypt=False`` is passed explicitly.

        ``version`` writes an older format (tests of reading and upgrading old repositories).

        ``share_ids_with`` copies another repository's id key and chunker parameters (not its
        encryption key): both then cut the same blobs with the same ids, so copying snapshots
        between them is a plain blob transfer and both deduplicate alike. Their formats must
        then hash ids alike (``version``: 3 for BLAKE3, 2 for BLAKE2b).

        The key file is written before the config, so a crash leaves either no repository or a
        complete one (``config`` present = repository exists).
        """
        if version not in SUPPORTED_VERSIONS:
            raise UsageError(f"cannot create a repository of format version {version}")
        if share_ids_with is not None and BLOB_ID_HASH[version] != share_ids_with.keys.id_hash:
            raise UsageError(
                f"format {version} hashes blob ids with {BLOB_ID_HASH[version]}, the repository to "
                f"share ids with uses {share_ids_with.keys.id_hash}: their ids would differ"
            )
        backend = open_backend(location)
        check_init_target(backend, passphrase, encrypt=encrypt)
        keys = MasterKeys.generate(encrypt=encrypt)
        options: dict[str, Any] = {"encryption": "aes-256-gcm" if encrypt else "none", "version": version}
        if share_ids_with is not None:
            keys = MasterKeys(encryption=keys.encryption, id_key=share_ids_with.keys.id_key)
            chunker = chunker or share_ids_with.config.chunker
        if chunker is not None:
            options["chunker"] = chunker
        if pack_size is not None:
            options["pack_size"] = pack_size
        key_file = None
        if not encrypt:
            options["id_key"] = b64encode(keys.id_key)
        config = RepoConfig(**options)
        if passphrase is not None and encrypt:
            key_file = write_key_file(backend, keys, config, passphrase, kdf or KdfParams())
            keys = MasterKeys(keys.encryption, keys.id_key, min_version=version)
        backend.put(CONFIG_FILE, encode_config(config, keys))
        repo = cls(backend, config, keys)
        repo.key_file = key_file
        return repo

    @classmethod
    def open(cls, location: str | os.PathLike[str] | Backend, passphrase: str | None) -> Repository:
        """Open an existing repository; ``WrongPassphrase`` when no key file opens with ``passphrase``.

        The config is trusted only as far as it is authenticated (``lifeboat.repo.keys``): a
        repository with key files never opens as unencrypted, and a version-2 config must open
        under the master key.
        """
        backend = open_backend(location)
        document = read_config_document(backend)
        if document.get("encryption") == "none":
            config = unencrypted_config(backend, document, passphrase)
            assert config.id_key is not None
            return cls(backend, config, MasterKeys(encryption=None, id_key=b64decode(config.id_key)))
        key_file, keys = unlock(backend, passphrase)
        repo = cls(backend, encrypted_config(backend, document, keys), keys)
        repo.key_file = key_file
        return repo

    def load_index(self) -> None:
        """(Re)read every index file. Damaged index files raise ``CorruptRepository`` (``check`` reports them).

        One listing of ``data/`` lets the index prefer stored copies of blobs listed twice (``Index``).
        """
        index = Index(self.stored_packs())
        names = set()
        files = []
        for info in self.backend.list(INDEX_DIR):
            names.add(info.name)
            try:
                files.append(self.read_index_file(info.name, self.backend.get(info.name)))
            except FileNotFoundError:
                continue  # replaced meanwhile by a prune
            except (DecryptionFailed, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
                raise CorruptRepository(
                    f"index file {info.name} cannot be decoded ({exc}); `lifeboat repair index` rebuilds the index"
                ) from exc
        replaced = superseded(files)
        for file in files:
            if file.id in replaced:
                log.warning(
                    "ignoring index file %s: a prune or repair replaced it (left by an interrupted one, or put back)",
                    file.id,
                )
                continue
            for entry in file.packs:
                index.add_pack(entry)
        self._index = index
        self._index_files = names

    def stored_packs(self) -> dict[str, int]:
        """Pack id -> size of every pack file in storage (one listing of ``data/``)."""
        return {basename(info.name): info.size for info in self.backend.list(DATA_DIR)}

    def encode_index_file(
        self, entries: Iterable[PackEntry], supersedes: Sequence[str] = ()
    ) -> tuple[str, bytes]:
        """(file name, bytes) of a new index file listing ``entries``, in this repository's format."""
        index_id, data = encode_index(self.sealer, entries, self.config.version, supersedes)
        return index_name(index_id), data

    def decode_index_file(self, name: str, data: bytes) -> list[PackEntry]:
        """The packs an index file lists, after checking it belongs to ``name`` (errors: see ``decode_index``)."""
        return self.read_index_file(name, data).packs

    def read_index_file(self, name: str, data: bytes) -> IndexFile:
        """An index file with the ids it supersedes, after checking it belongs to ``name``."""
        return decode_index_file(self.sealer, basename(name), data, self.config.version)

    def refresh_index(self) -> bool:
        """Reload the index if the set of index files changed since it was read; True if reloaded.

        ``lock`` calls this once the lock is held: a prune may have replaced index files and
        deleted packs between ``open`` and the lock, and a writer trusting the old index would
        then deduplicate against blobs that are gone.
        """
        names = {info.name for info in self.backend.list(INDEX_DIR)}
        if names == getattr(self, "_index_files", None):
            return False
        self.load_index()
        return True

    # -- locks -------------------------------------------------------------------------------------

    def lock(self, *, exclusive: bool = False) -> RepositoryLock:
        """Take a shared (backup, restore) or exclusive (prune) lock; ``RepositoryLocked`` on conflict.

        Use as ``with repo.lock(): ...``; the lock refreshes itself until released.
        """
        lock = RepositoryLock(self.locks, exclusive=exclusive).acquire()
        try:
            self.refresh_index()
        except BaseException:
            lock.release()
            raise
        return lock

    def add_key(self, passphrase: str, kdf: KdfParams | None = None) -> str:
        """Write a key file that opens this repository with ``passphrase``; returns its name.

        The key file is of this repository's format (version 2: with ``min_version`` and a copy of
        the settings, docs/FORMAT.md §4), so ``key add`` and friends need no format knowledge.
        """
        if not self.config.encrypted:
            raise UsageError("an unencrypted repository has no keys")
        return write_key_file(self.backend, self.keys, self.config, passphrase, kdf or KdfParams())

    def list_locks(self) -> list[LockInfo]:
        return list(self.locks.all())

    def unlock(self, *, force: bool = False) -> list[LockInfo]:
        """Remove stale locks (every lock with ``force``); returns the removed ones."""
        return self.locks.remove(force=force)

    # -- writing -----------------------------------------------------------------------------------

    def writer(
        self, *, pack_size: int | None = None, chunker: ChunkerParams | None = None
    ) -> RepositoryWriter:
        """A thread-safe writer; blobs become durable on ``flush``/``close`` (see ``lifeboat.repo.writer``).

        Keep the repository's chunker parameters (the default) for deduplication across snapshots.
        """
        return RepositoryWriter(
            self, pack_size=pack_size or self.config.pack_size, chunker=chunker or self.config.chunker
        )

    # -- reading -----------------------------------------------------------------------------------

    def read_blob(self, blob_id: str, *, trust_aead: bool = False) -> bytes:
        """One blob's plaintext, read with a ranged get; ``CorruptBlob`` if missing or damaged
        (``trust_aead``: see :func:`lifeboat.repo.blobs.decode_blob`)."""
        location = self.index.get(blob_id)
        if location is None:
            raise CorruptBlob(blob_id, "not in the index")
        try:
            body = self.backend.get(pack_name(location.pack_id), location.offset, location.length)
        except FileNotFoundError as exc:
            raise CorruptBlob(blob_id, f"its pack {location.pack_id} is missing") from exc
        if len(body) != location.length:
            raise CorruptBlob(blob_id, f"its pack {location.pack_id} is truncated")
        return decode_blob(self.keys, self.sealer, blob_id, body, location.raw_size, trust_aead=trust_aead)

    def read_blobs(
        self, blob_ids: Iterable[str], *, prefetch: int = 4, trust_aead: bool = False
    ) -> Iterator[tuple[str, bytes]]:
        """Blobs in the given order, fetched ``prefetch`` requests ahead in threads; blobs stored next
        to each other are fetched with one request (``lifeboat.repo.reads``; memory: ``prefetch``
        groups of up to 2 MiB of plaintext, or one bigger blob each)."""
        from lifeboat.repo.reads import read_blobs

        yield from read_blobs(self, blob_ids, prefetch=prefetch, trust_aead=trust_aead)

    def iter_stream_data(
        self,
        stream: Stream,
        keys: Iterable[str] | None = None,
        *,
        prefetch: int = 4,
        trust_aead: bool = False,
    ) -> Iterator[bytes]:
        """A stream's blobs' plaintext in order (only blobs whose zone map may hold ``keys``, if given)."""
        refs = stream.blobs_covering(keys)
        for _blob_id, data in self.read_blobs(
            (ref.id for ref in refs), prefetch=prefetch, trust_aead=trust_aead
        ):
            yield data

    def iter_records(
        self, stream: Stream, keys: Iterable[str] | None = None, *, prefetch: int = 4
    ) -> Iterator[bytes]:
        """A stream's records (each ending in ``\\n``), from the blobs that may hold ``keys`` if given.

        Only for streams of lines: records of other streams (binary table streams) are split by
        the layer that knows their framing (``iter_stream_data`` gives their blobs' bytes).

        Zone maps select blobs, not records: records of other keys in those blobs are yielded too;
        filter them in the caller, which knows how to find a record's key.
        """
        for data in self.iter_stream_data(stream, keys, prefetch=prefetch):
            yield from split_records(data)

    # -- snapshots ---------------------------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Write the manifest, making the snapshot visible. Refuses if any blob it needs is not durable:
        not in the index, or its pack not in storage at the indexed size (one listing of ``data/``)."""
        missing = sorted(blob_id for blob_id in snapshot.blob_ids() if blob_id not in self.index)
        if missing:
            raise CorruptRepository(
                f"refusing to save snapshot {snapshot.short_id}: {len(missing)} blob(s) are not in the index "
                f"(first: {missing[0]}); close the writer before saving the snapshot"
            )
        lost = self._packs_not_stored(snapshot)
        if lost:
            self.load_index()  # a prune may have repacked them: the new index lists other copies
            lost = self._packs_not_stored(snapshot)
        if lost:
            raise CorruptRepository(
                f"refusing to save snapshot {snapshot.short_id}: {len(lost)} pack(s) it needs are missing "
                f"or damaged in the repository (first: {lost[0]}); nothing was saved, back up again"
            )
        self._write_manifest(snapshot)

    def _write_manifest(self, snapshot: Snapshot) -> None:
        # model_dump_json's bytes, without its str and a copy encoded from it (MBs: the agent catalog)
        payload = compress(snapshot.__pydantic_serializer__.to_json(snapshot))
        self.backend.put(snapshot_name(snapshot.id), self.sealer.seal(payload, snapshot_aad(snapshot.id)))

    def rewrite_snapshot(self, snapshot: Snapshot) -> None:
        """Replace an existing manifest by ``snapshot`` (same id; e.g. other tags) in one atomic put.

        Only for changes that need no blob (the caller keeps ``streams``); hold the exclusive lock.
        """
        if not self.backend.exists(snapshot_name(snapshot.id)):
            raise SnapshotNotFound(f"no snapshot {snapshot.id}")
        self._write_manifest(snapshot)

    def _packs_not_stored(self, snapshot: Snapshot) -> list[str]:
        """Packs the snapshot's blobs are in that storage lacks or holds at another size; a blob in
        no index counts as in the missing pack ``"(unindexed)"``."""
        stored = self.stored_packs()
        lost = set()
        for blob_id in snapshot.blob_ids():
            location = self.index.get(blob_id)
            if location is None:
                lost.add("(unindexed)")
            elif stored.get(location.pack_id) != self.index.pack_size(location.pack_id):
                lost.add(location.pack_id)
        return sorted(lost)

    # -- checking ----------------------------------------------------------------------------------

    def check(
        self,
        *,
        read_data: bool = False,
        subset_percent: float | None = None,
        seed: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CheckReport:
        """Check structure, and with ``read_data`` every (or a random ``subset_percent`` of) pack's blobs
        (``progress(bytes_read, bytes_total)`` after each pack)."""
        from lifeboat.repo.check import check_repository

        return check_repository(
            self, read_data=read_data, subset_percent=subset_percent, seed=seed, progress=progress
        )

    def verify_snapshot(
        self, snapshot: Snapshot, *, read_data: bool = False, blob_ids: Iterable[str] | None = None
    ) -> CheckReport:
        """The fast pre-restore check: every blob the snapshot needs (or only ``blob_ids``, e.g. the blobs
        of a partial restore) is indexed, its pack present with the right size; with ``read_data``
        each such blob is also read and verified (decrypt, decompress, keyed hash)."""
        from lifeboat.repo.check import verify_snapshot_blobs

        return verify_snapshot_blobs(self, snapshot, read_data=read_data, blob_ids=blob_ids)

    def rebuild_index(self, *, full: bool = False) -> RebuildReport:
        """Index unindexed packs from their trailers (all packs, replacing the index, with ``full``).

        Take the exclusive lock first: ``with repo.lock(exclusive=True): repo.rebuild_index()``.
        """
        from lifeboat.repo.maintenance import rebuild_index

        return rebuild_index(self, full=full)

    def __repr__(self) -> str:
        return f"Repository({self.backend.url!r}, version={self.config.version}, encrypted={self.config.encrypted})"


def split_records(data: bytes) -> list[bytes]:
    """A blob's records, each keeping its ``\\n`` (not ``bytes.splitlines``: that also splits at ``\\r``)."""
    lines = data.split(b"\n")
    lines.pop()  # a blob ends with a newline: the last piece is empty
    return [line + b"\n" for line in lines]
