"""Writing blobs: a thread-safe writer shared by parallel producers, and one stream writer per producer.

Work split: hashing, chunking, compression and encryption run in the producer's thread (zstd,
AES-GCM and both id hashes, BLAKE2b and BLAKE3, release the GIL, so producers use several cores);
only appending an encoded body to the shared open pack happens under the writer's lock. The
producer whose blob fills the pack seals and uploads it, outside the lock.

Storage is the truth: the writer lists ``data/`` once when it starts and deduplicates only
against blobs whose pack is there at the size the index gives; a blob whose pack is missing or
truncated is stored again (and the index then prefers the new copy).

Durability: a blob is durable once its pack is uploaded *and* an index file listing that pack
is written. ``flush()``/``close()`` make everything added so far durable; only then may a
manifest referring to the blobs be saved (``Repository.save_snapshot`` refuses otherwise).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from lifeboat.errors import StorageError, note_rolled_back
from lifeboat.repo.blobs import encode_blob
from lifeboat.repo.chunker import Chunk, Key, RecordChunker
from lifeboat.repo.config import ChunkerParams, pack_name
from lifeboat.repo.heap import release_free_memory
from lifeboat.repo.index import PackEntry
from lifeboat.repo.manifest import BlobRef, Stream
from lifeboat.repo.packs import PackBuilder

if TYPE_CHECKING:
    from lifeboat.repo.parts import OpenRepository

INDEX_EVERY_PACKS = 64


@dataclass
class WriteStats:
    """What a writer (or one stream) added: new vs deduplicated blobs, plaintext and stored bytes."""

    blobs_new: int = 0
    blobs_deduplicated: int = 0
    raw_bytes_new: int = 0
    raw_bytes_deduplicated: int = 0
    bytes_added: int = 0  # encoded (compressed, sealed) bytes of new blobs: what the repository grew by
    records: int = 0

    def count(self, raw_size: int, stored_size: int, *, new: bool) -> None:
        if new:
            self.blobs_new += 1
            self.raw_bytes_new += raw_size
            self.bytes_added += stored_size
        else:
            self.blobs_deduplicated += 1
            self.raw_bytes_deduplicated += raw_size


@dataclass(frozen=True)
class RecordBatch:
    """Records one per item, with one sort key each (for the zone map) or none."""

    records: Sequence[bytes]
    keys: Sequence[Key] | None = None


@runtime_checkable
class LinesBatch(Protocol):
    """A buffer of whole lines with optional keys, e.g. ``lifeboat.pg.copystream.CopyBatch``."""

    @property
    def data(self) -> bytes: ...

    @property
    def keys(self) -> Sequence[Key] | None: ...


# What ``write_stream`` accepts per item: a buffer of whole lines, a RecordBatch, any LinesBatch,
# or a sequence of records (bytes each).
Batch = bytes | bytearray | memoryview | RecordBatch | LinesBatch | Sequence[bytes]


class RepositoryWriter:
    """Adds blobs to one repository from any number of threads. Use as a context manager.

    Normal exit flushes (seals the open pack, uploads it, writes the index). Exit by exception
    indexes the packs already uploaded (so a retry deduplicates against them) and drops the rest.
    """

    def __init__(self, repo: OpenRepository, *, pack_size: int, chunker: ChunkerParams) -> None:
        self.repo = repo
        self.pack_size = pack_size
        self.chunker_params = chunker
        self.stats = WriteStats()
        self._lock = threading.Condition()
        self._index_lock = threading.Lock()
        self._builder = PackBuilder()
        self._stored: dict[str, int | None] = {}  # blob id -> stored size, None while being encoded
        self._unindexed: list[PackEntry] = []  # uploaded packs no index file lists yet
        self._uploads_in_flight = 0
        self._failure: BaseException | None = None
        self._closed = False
        self._stored_packs = repo.stored_packs()  # what deduplication may rely on
        self.restored_blobs = 0  # blobs stored again because their indexed pack was missing or damaged

    # -- producers -------------------------------------------------------------------------------

    def add_blob(
        self, data: bytes, *, records: int = 0, zone_min: str | None = None, zone_max: str | None = None
    ) -> BlobRef:
        """Store ``data`` unless the repository already has it; returns its reference. Thread-safe."""
        ref, _new = self._add(data, records, zone_min, zone_max)
        return ref

    def can_reference(self, ref: BlobRef) -> bool:
        """True when ``ref`` (from an earlier manifest) may be referenced again without storing it:
        indexed at its recorded stored size, in a pack present at its indexed size."""
        location = self.repo.index.get(ref.id)
        if location is None or location.length != ref.size:
            return False
        stored = self._stored_packs.get(location.pack_id)
        return stored is not None and stored == self.repo.index.pack_size(location.pack_id)

    def _count_referenced(self, refs: Sequence[BlobRef]) -> None:
        with self._lock:
            for ref in refs:
                self.stats.count(ref.raw_size, ref.size, new=False)
                self.stats.records += ref.records

    def open_stream(
        self, name: str, attributes: dict[str, Any] | None = None, *, key_aligned: bool = False
    ) -> StreamWriter:
        """A writer for one stream of records; use one per producer thread. ``key_aligned``: every
        record has a key, equal keys are consecutive, and blobs end only where the key changes
        (docs/FORMAT.md §10)."""
        return StreamWriter(self, name, attributes or {}, key_aligned=key_aligned)

    def write_stream(
        self,
        name: str,
        batches: Iterable[Batch],
        attributes: dict[str, Any] | None = None,
    ) -> Stream:
        """Chunk and store a whole stream of record batches; returns its manifest entry."""
        stream = self.open_stream(name, attributes)
        for batch in batches:
            stream.add_batch(batch)
        return stream.close()

    def _add(
        self, data: bytes, records: int, zone_min: str | None, zone_max: str | None
    ) -> tuple[BlobRef, bool]:
        """Store ``data`` unless known; returns its reference and whether it was new."""
        self._raise_if_unusable()
        blob_id = self.repo.keys.blob_id(data)
        stored_size = self._reserve_or_wait(blob_id)
        new = stored_size is None
        if stored_size is None:
            stored_size = self._encode_and_append(blob_id, data, records)
        else:
            with self._lock:
                self.stats.count(len(data), stored_size, new=False)
                self.stats.records += records
        ref = BlobRef(
            id=blob_id,
            size=stored_size,
            raw_size=len(data),
            records=records,
            zone_min=zone_min,
            zone_max=zone_max,
        )
        return ref, new

    def _encode_and_append(self, blob_id: str, data: bytes, records: int) -> int:
        """Compress and seal a reserved blob (in this thread), append it to the open pack; its stored size."""
        try:
            body = encode_blob(self.repo.sealer, blob_id, data)
        except BaseException:
            with self._lock:
                del self._stored[blob_id]  # release the reservation: a waiting producer encodes it
                self._lock.notify_all()
            raise
        self._append(blob_id, body, len(data), records)
        return len(body)

    def _reserve_or_wait(self, blob_id: str) -> int | None:
        """The stored size when the blob exists already; else reserve it for us and return None."""
        location = self.repo.index.get(blob_id)
        if location is not None:
            stored = self._stored_packs.get(location.pack_id)
            if stored is not None and stored == self.repo.index.pack_size(location.pack_id):
                return location.length
        with self._lock:
            while blob_id in self._stored:
                size = self._stored[blob_id]
                if size is not None:
                    return size
                self._lock.wait()  # another producer is encoding the same blob right now
                self._raise_if_unusable()
            self._stored[blob_id] = None
            if location is not None:
                self.restored_blobs += 1
            return None

    def _append(self, blob_id: str, body: bytes, raw_size: int, records: int) -> None:
        full: PackBuilder | None = None
        with self._lock:
            self._builder.add(blob_id, body, raw_size)
            self._stored[blob_id] = len(body)
            self.stats.count(raw_size, len(body), new=True)
            self.stats.records += records
            self._lock.notify_all()
            if self._builder.size >= self.pack_size:
                full, self._builder = self._builder, PackBuilder()
                self._uploads_in_flight += 1
        if full is not None:
            self._upload(full)

    def _upload(self, builder: PackBuilder) -> None:
        """Seal and store one pack (the caller counted it in ``_uploads_in_flight``)."""
        index_due = False
        try:
            sealed = builder.seal(self.repo.sealer)
            self.repo.backend.put(pack_name(sealed.id), sealed.data)
            with self._lock:
                self._stored_packs[sealed.id] = len(sealed.data)
                self._unindexed.append(PackEntry(sealed.id, len(sealed.data), sealed.blobs))
                index_due = len(self._unindexed) >= INDEX_EVERY_PACKS
        except Exception as exc:
            with self._lock:
                self._failure = self._failure or exc  # its blobs are lost: nothing may refer to them
            raise StorageError(f"could not store a pack in {self.repo.backend.url}: {exc}") from exc
        except BaseException as exc:  # KeyboardInterrupt and friends: same bookkeeping, no wrapping
            with self._lock:
                self._failure = self._failure or exc
            raise
        finally:
            with self._lock:
                self._uploads_in_flight -= 1
                self._lock.notify_all()
        del sealed  # the pack's buffer goes back to the system (one block), then the heap's holes
        release_free_memory()
        if index_due:
            self._write_index()

    def _write_index(self) -> None:
        """Write one index file for the uploaded packs not yet indexed, then publish them in memory."""
        with self._index_lock:
            with self._lock:
                entries, self._unindexed = self._unindexed, []
            if not entries:
                return
            name, data = self.repo.encode_index_file(entries)
            try:
                self.repo.backend.put(name, data)
            except Exception as exc:
                with self._lock:
                    self._unindexed[:0] = entries
                raise StorageError(
                    f"could not store an index file in {self.repo.backend.url}: {exc}"
                ) from exc
            for entry in entries:
                self.repo.index.add_pack(entry, preferred=True)

    def _raise_if_unusable(self) -> None:
        self._raise_if_failed()
        if self._closed:
            raise RuntimeError("repository writer is closed")

    # -- lifecycle -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Seal and upload the open pack, wait for other uploads, write the index: all added blobs are durable."""
        with self._lock:
            while self._uploads_in_flight:
                self._lock.wait()
            self._raise_if_failed()
            full: PackBuilder | None = None
            if len(self._builder):
                full, self._builder = self._builder, PackBuilder()
                self._uploads_in_flight += 1
        if full is not None:
            self._upload(full)
        self._write_index()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise StorageError(
                f"an earlier pack upload to {self.repo.backend.url} failed ({self._failure}); nothing more is written"
            ) from self._failure

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True

    def abort(self) -> None:
        """Give up: drop the open pack, index what is already uploaded (best effort)."""
        self._closed = True
        with self._lock:
            while self._uploads_in_flight:
                self._lock.wait()
            self._builder = PackBuilder()
        with contextlib.suppress(Exception):  # else the packs stay unindexed; prune collects them
            self._write_index()

    def __enter__(self) -> RepositoryWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
            if exc is not None:
                note_rolled_back(exc, "unfinished pack discarded (no snapshot refers to the data written)")


class StreamWriter:
    """Chunks one stream of records (lines ending in ``\\n``, or records framed by ``ends``) into blobs.
    Not thread-safe: one per producer."""

    def __init__(
        self, writer: RepositoryWriter, name: str, attributes: dict[str, Any], *, key_aligned: bool = False
    ) -> None:
        self.writer = writer
        self.name = name
        self.attributes = attributes
        self.stats = WriteStats()
        seed = writer.repo.keys.chunker_seed()
        self._chunker = RecordChunker(writer.chunker_params, seed, key_aligned=key_aligned)
        self._blobs: list[BlobRef] = []

    def add(
        self,
        data: bytes,
        keys: Sequence[Key] | None = None,
        ends: Sequence[int] | None = None,
        lines: Sequence[bytes] | None = None,
    ) -> None:
        """Add a buffer of whole lines (e.g. a ``CopyBatch.data``), with one sort key per line or none;
        with ``ends``, a buffer of records that are not lines, ``ends[i]`` the end of record ``i``.
        ``lines``: the buffer already split into its lines (without newlines), if the caller has them."""
        chunks = (
            self._chunker.feed(data, keys, lines)
            if ends is None
            else self._chunker.feed_framed(data, ends, keys)
        )
        for chunk in chunks:
            self._store(chunk)

    def add_records(self, records: Sequence[bytes], keys: Sequence[Key] | None = None) -> None:
        """Add records one per item, each ending with its only ``\\n``."""
        for chunk in self._chunker.feed_records(records, keys):
            self._store(chunk)

    def add_batch(self, batch: Batch) -> None:
        """Add any accepted batch shape (see ``Batch``)."""
        if isinstance(batch, bytes | bytearray | memoryview):
            self.add(bytes(batch))
        elif isinstance(batch, RecordBatch):
            self.add_records(batch.records, batch.keys)
        elif isinstance(batch, LinesBatch):
            self.add(batch.data, batch.keys, getattr(batch, "ends", None), getattr(batch, "lines", None))
        else:
            self.add_records(batch)

    def cut(self) -> None:
        """End the current blob here (even if short): what follows starts a new blob."""
        last = self._chunker.finish()
        if last is not None:
            self._store(last)

    def reference(self, refs: Sequence[BlobRef]) -> None:
        """Append blobs of an earlier snapshot as they are (an incremental backup's unchanged rows).

        The caller checked each with :meth:`RepositoryWriter.can_reference`; records before them
        end their own blob first, so blob boundaries stay on record boundaries.
        """
        self._raise_unless_referencable(refs)
        self.cut()
        self._blobs.extend(refs)
        for ref in refs:
            self.stats.count(ref.raw_size, ref.size, new=False)
            self.stats.records += ref.records
        self.writer._count_referenced(refs)

    def _raise_unless_referencable(self, refs: Sequence[BlobRef]) -> None:
        missing = [ref.id for ref in refs if not self.writer.can_reference(ref)]
        if missing:
            raise StorageError(f"blob {missing[0][:12]} is no longer stored; it cannot be referenced again")

    def close(self) -> Stream:
        """Flush the last chunk; returns the stream's manifest entry (durable once the writer flushes)."""
        self.cut()
        return Stream(name=self.name, attributes=self.attributes, blobs=self._blobs)

    def _store(self, chunk: Chunk) -> None:
        ref, new = self.writer._add(chunk.data, chunk.records, chunk.zone_min, chunk.zone_max)
        self.stats.count(ref.raw_size, ref.size, new=new)
        self.stats.records += chunk.records
        self._blobs.append(ref)
