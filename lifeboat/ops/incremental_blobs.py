"""The previous snapshot's blobs as an incremental backup reads them: decoded once for the plan
and the write of a table (:class:`BlobReader`), split into each key's records (:func:`key_spans`),
with the decoded plaintext kept between the two within a budget shared by the backup's tables
(:class:`DecodedBudget`)."""

from __future__ import annotations

import threading
from itertools import accumulate, compress, pairwise, repeat
from operator import add, ne

from lifeboat.errors import CorruptRepository, StorageError
from lifeboat.ops.incremental_plan import UnreadableBlob
from lifeboat.pg.copystream import run_keys, text_keys
from lifeboat.repo.repository import Repository

# Plaintext of the blobs the plans decoded, kept for the writes: at most this many bytes at once
# in one backup, whichever tables hold them; past it a write reads a blob again (a second
# request, on S3 the costlier part, and a second decompression). At 1x the plan of `messages`
# alone decodes ~50 blobs of ~1 MB (one per changed agent), so the 8 MB a table once had made
# its write read ~30 MB again: 0.03 s of an incremental of ~1.25 s (BENCHMARKS.md, session 11).
KEEP_DECODED_BYTES = 48 * 1024 * 1024


class DecodedBudget:
    """How much decoded plaintext the blob readers of one backup may keep (shared by the tables
    copied at once, so the backup's memory is bounded however many copy in parallel)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = KEEP_DECODED_BYTES if limit is None else limit
        self._used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes if they fit."""
        with self._lock:
            if self._used + size > self.limit:
                return False
            self._used += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self._used -= size


class BlobReader:
    """Reads (and authenticates) blobs of one table's previous stream and finds where each key's
    records are in them. The plan and the write share one reader: a blob the plan decoded is
    not split into records a second time, and is not read again while the plaintext kept for
    the write fits in ``budget`` (the backup's, see :class:`DecodedBudget`)."""

    def __init__(
        self, repo: Repository, key_index: int, *, runs: bool = False, budget: DecodedBudget | None = None
    ) -> None:
        self.repo, self.key_index, self.runs = repo, key_index, runs
        self.budget = budget if budget is not None else DecodedBudget()
        self._spans: dict[str, dict[str, tuple[int, int, int]]] = {}  # blob id -> key -> (start, end, rows)
        self._last: tuple[str, bytes] | None = None  # neighbouring segments often need the same blob
        self._kept: dict[str, bytes] = {}  # blob id -> plaintext the plan decoded, for the write
        self._writing = False

    def counts(self, blob: object) -> dict[str, int]:
        """Rows per key in ``blob`` (the plan's decoder; raises UnreadableBlob)."""
        return {key: rows for key, (_, _, rows) in self._spans_of(blob).items()}

    def span(self, blob: object, key: str) -> tuple[bytes, int]:
        """The contiguous bytes of ``key``'s records in ``blob``, and how many there are."""
        found = self._spans_of(blob).get(key)
        if found is None:
            return b"", 0
        start, end, rows = found
        return self._data(blob)[start:end], rows

    def _spans_of(self, blob: object) -> dict[str, tuple[int, int, int]]:
        blob_id: str = blob.id  # type: ignore[attr-defined]
        spans = self._spans.get(blob_id)
        if spans is None:
            spans = self._spans[blob_id] = key_spans(self._data(blob), self.key_index, runs=self.runs)
        return spans

    def _data(self, blob: object) -> bytes:
        blob_id: str = blob.id  # type: ignore[attr-defined]
        if self._last is not None and self._last[0] == blob_id:
            return self._last[1]
        if self._last is not None and self._writing:  # the write moves forward: that blob is done
            self._spans.pop(self._last[0], None)
            self.budget.give_back(len(self._kept.pop(self._last[0], b"")))
        data = self._kept.get(blob_id)
        if data is None:
            data = self._read(blob_id)
            if not self._writing and self.budget.take(len(data)):
                self._kept[blob_id] = data
        self._last = (blob_id, data)
        return data

    def _read(self, blob_id: str) -> bytes:
        try:
            # AES-GCM under the blob id authenticates an encrypted blob (the keyed hash is
            # checked without encryption), as on restore: docs/FORMAT.md §5
            return self.repo.read_blob(blob_id, trust_aead=True)
        except (CorruptRepository, StorageError) as exc:
            raise UnreadableBlob(str(exc)) from exc

    def start_writing(self) -> None:
        """From now on blobs are visited in stream order: forget each one's spans once passed."""
        self._writing = True

    def close(self) -> None:
        """Give back what is still kept (blobs the write did not reach, or after a failure)."""
        self.budget.give_back(sum(map(len, self._kept.values())))
        self._kept.clear()
        self._last = None


def key_spans(data: bytes, key_index: int, *, runs: bool = False) -> dict[str, tuple[int, int, int]]:
    """Each key of a blob's COPY TEXT records (field ``key_index``, as text) with the byte range
    of its records and their number. The records of one key must be contiguous (the stream is
    sorted by key): a key seen again after another raises UnreadableBlob, as does a blob that is
    not whole lines or a record without that field. Runs in C but for one step per key.

    ``runs``: the table's keys come in runs of identical printed keys (``pg.keys_come_in_runs``,
    what the backup that wrote the blob relied on to find its keys and cut it), so each run's
    end is found by bisection (``run_keys``) instead of reading every record's key. On the
    240 blobs (48.7 MB) an incremental of the 5,000-agent benchmark decodes: keys 23 -> 10 ms,
    the whole 55 -> 45 ms (splitting the lines and their offsets stay)."""
    lines = data.split(b"\n")
    if lines.pop() != b"":
        raise UnreadableBlob("a blob does not end with a newline")
    try:
        raw = run_keys(lines, key_index) if runs else text_keys(lines, key_index)
    except IndexError:
        raise UnreadableBlob("a record has no key field") from None
    starts = list(accumulate(map(add, map(len, lines), repeat(1)), initial=0))
    changes = [0, *compress(range(1, len(raw)), map(ne, raw[1:], raw[:-1])), len(raw)] if raw else [0]
    spans: dict[str, tuple[int, int, int]] = {}
    for first, stop in pairwise(changes):
        key = raw[first].decode("utf-8", "backslashreplace")
        if key in spans:
            raise UnreadableBlob("a key's records are not contiguous")
        spans[key] = (starts[first], starts[stop], stop - first)
    return spans
