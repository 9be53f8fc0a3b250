"""Property tests (hypothesis) for the formats: chunker, blobs, packs, index, manifests."""

from __future__ import annotations

import os
import zlib
from itertools import accumulate, pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifeboat.errors import CorruptBlob
from lifeboat.repo import BlobRef, ChunkerParams, RecordChunker, Snapshot, Stream
from lifeboat.repo.blobs import decode_blob, encode_blob
from lifeboat.repo.config import FORMAT_VERSION
from lifeboat.repo.crypto import MasterKeys, Sealer
from lifeboat.repo.index import PackEntry, decode_index, encode_index
from lifeboat.repo.packs import FOOTER_SIZE, PackBuilder, parse_pack_tail

PARAMS = ChunkerParams(min_size=200, avg_size=800, max_size=2000)
KEYS_ENCRYPTED = MasterKeys(encryption=os.urandom(32), id_key=os.urandom(32)).for_format(FORMAT_VERSION)
KEYS_PLAIN = MasterKeys(encryption=None, id_key=os.urandom(32)).for_format(FORMAT_VERSION)

record = st.binary(max_size=600).map(lambda data: data.replace(b"\n", b"\t") + b"\n")
records = st.lists(record, max_size=120)
keyed_records = st.lists(st.tuples(record, st.text(max_size=6)), max_size=120)


def split_points(count: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, count), max_size=6).map(sorted)


def feed_in_batches(
    chunker: RecordChunker, rows: list[bytes], cuts: list[int], keys: list[str] | None = None
) -> list[Any]:
    chunks: list[Any] = []
    bounds = [0, *cuts, len(rows)]
    for start, stop in pairwise(bounds):
        batch_keys = None if keys is None else keys[start:stop]
        if start % 3 == 1:
            chunks += chunker.feed_records(rows[start:stop], batch_keys)
        elif start % 3 == 2:  # already split into lines, as a COPY batch hands them on
            lines = [row[:-1] for row in rows[start:stop]]
            chunks += chunker.feed(b"".join(rows[start:stop]), batch_keys, lines)
        else:
            chunks += chunker.feed(b"".join(rows[start:stop]), batch_keys)
    last = chunker.finish()
    return chunks + ([last] if last else [])


def reference_cuts(rows: list[bytes], params: ChunkerParams, seed: int) -> list[int]:
    """Record counts per blob, walking records one at a time exactly as FORMAT.md §10 says."""
    scale = 2**32 // (params.avg_size - params.min_size)
    counts, size = [0], 0
    for row in rows:
        if size and size + len(row) > params.max_size:
            counts.append(0)
            size = 0
        counts[-1] += 1
        size += len(row)
        if size >= params.min_size and (
            zlib.crc32(row[:-1], seed) < len(row) * scale or size >= params.max_size
        ):
            counts.append(0)
            size = 0
    return [count for count in counts if count]


@given(rows=records, data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_chunker_cuts_only_at_record_ends_whatever_the_batching(
    rows: list[bytes], data: st.DataObject, seed: int
) -> None:
    chunks = feed_in_batches(RecordChunker(PARAMS, seed), rows, data.draw(split_points(len(rows))))
    assert b"".join(chunk.data for chunk in chunks) == b"".join(rows)
    assert [chunk.records for chunk in chunks] == reference_cuts(rows, PARAMS, seed)
    position = 0
    for chunk in chunks:
        assert chunk.data == b"".join(rows[position : position + chunk.records])  # whole records only
        assert len(chunk.data) <= PARAMS.max_size or chunk.records == 1
        position += chunk.records
    again = feed_in_batches(RecordChunker(PARAMS, seed), rows, data.draw(split_points(len(rows))))
    assert [chunk.data for chunk in again] == [chunk.data for chunk in chunks]  # deterministic


@given(pairs=keyed_records, data=st.data())
@settings(max_examples=100)
def test_zone_maps_hold_min_and_max_key(pairs: list[tuple[bytes, str]], data: st.DataObject) -> None:
    rows, keys = [row for row, _ in pairs], [key for _, key in pairs]
    chunks = feed_in_batches(RecordChunker(PARAMS, 1), rows, data.draw(split_points(len(rows))), keys)
    position = 0
    for chunk in chunks:
        chunk_keys = keys[position : position + chunk.records]
        assert (chunk.zone_min, chunk.zone_max) == (min(chunk_keys), max(chunk_keys))
        position += chunk.records


@given(prefix=records, inserted=records, suffix=st.lists(record, min_size=60, max_size=150))
@settings(max_examples=60)
def test_an_insertion_only_changes_blobs_near_it(
    prefix: list[bytes], inserted: list[bytes], suffix: list[bytes]
) -> None:
    """After the change, cuts fall back into step: both versions end with the same blobs."""
    before = [c.data for c in feed_in_batches(RecordChunker(PARAMS, 5), prefix + suffix, [])]
    after = [c.data for c in feed_in_batches(RecordChunker(PARAMS, 5), prefix + inserted + suffix, [])]
    common_tail = 0
    while common_tail < min(len(before), len(after)) and before[-1 - common_tail] == after[-1 - common_tail]:
        common_tail += 1
    tail_bytes = sum(map(len, before[len(before) - common_tail :]))
    # Resynchronisation happens at the first boundary record after the change: allow a few blobs.
    assert tail_bytes >= sum(map(len, suffix)) - 4 * PARAMS.max_size


@given(plaintext=st.binary(max_size=5000), encrypted=st.booleans())
def test_blob_round_trip(plaintext: bytes, encrypted: bool) -> None:
    keys = KEYS_ENCRYPTED if encrypted else KEYS_PLAIN
    sealer = Sealer(keys.encryption)
    blob_id = keys.blob_id(plaintext)
    body = encode_blob(sealer, blob_id, plaintext)
    assert decode_blob(keys, sealer, blob_id, body, len(plaintext)) == plaintext
    assert decode_blob(keys, sealer, blob_id, body, len(plaintext), trust_aead=True) == plaintext


@given(plaintext=st.binary(min_size=1, max_size=2000), encrypted=st.booleans(), data=st.data())
def test_trusting_the_aead_still_refuses_any_damage(
    plaintext: bytes, encrypted: bool, data: st.DataObject
) -> None:
    """Restore's single pass skips the keyed hash of an encrypted repository's blobs: a flipped bit
    anywhere in the body, or the body filed under another blob id, must still be refused. (Without
    encryption a bit of the zstd frame header may flip without changing the plaintext; then the
    blob is still exactly itself, so only the wrong id is asserted there.)"""
    keys = KEYS_ENCRYPTED if encrypted else KEYS_PLAIN
    sealer = Sealer(keys.encryption)
    blob_id = keys.blob_id(plaintext)
    body = bytearray(encode_blob(sealer, blob_id, plaintext))
    position = data.draw(st.integers(0, len(body) - 1))
    body[position] ^= 1 << data.draw(st.integers(0, 7))
    other = keys.blob_id(plaintext + b"x")
    cases = [(other, encode_blob(sealer, blob_id, plaintext))]
    if encrypted:
        cases.append((blob_id, bytes(body)))
    for wanted, candidate in cases:
        with pytest.raises(CorruptBlob):
            decode_blob(keys, sealer, wanted, candidate, len(plaintext), trust_aead=True)


@given(blobs=st.lists(st.binary(max_size=3000), max_size=20), encrypted=st.booleans())
def test_pack_round_trip(blobs: list[bytes], encrypted: bool) -> None:
    keys = KEYS_ENCRYPTED if encrypted else KEYS_PLAIN
    sealer = Sealer(keys.encryption)
    builder = PackBuilder()
    for plaintext in blobs:
        blob_id = keys.blob_id(plaintext)
        builder.add(blob_id, encode_blob(sealer, blob_id, plaintext), len(plaintext))
    pack = builder.seal(sealer)
    entries = parse_pack_tail(sealer, pack.id, pack.data[-FOOTER_SIZE - 10_000 :], len(pack.data))
    assert entries == pack.blobs
    for entry, plaintext in zip(entries, blobs, strict=True):
        body = pack.data[entry.offset : entry.offset + entry.length]
        assert decode_blob(keys, sealer, entry.id, body, entry.raw_size) == plaintext
    for version in (1, 2):
        index_id, data = encode_index(sealer, [PackEntry(pack.id, len(pack.data), pack.blobs)], version)
        index = decode_index(sealer, index_id, data, version)
        assert index == [PackEntry(pack.id, len(pack.data), pack.blobs)]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
blob_refs = st.builds(
    BlobRef,
    id=st.binary(min_size=32, max_size=32).map(bytes.hex),
    size=st.integers(0, 2**40),
    raw_size=st.integers(0, 2**40),
    records=st.integers(0, 2**31),
    zone_min=st.none() | st.text(max_size=10),
    zone_max=st.none() | st.text(max_size=10),
)
streams = st.builds(
    Stream,
    name=st.text(max_size=20),
    attributes=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    blobs=st.lists(blob_refs, max_size=5),
)


@given(
    streams=st.lists(streams, max_size=4),
    documents=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    tags=st.lists(st.text(max_size=10), max_size=3),
)
@settings(max_examples=50)
def test_manifest_round_trip(streams: list[Stream], documents: dict[str, Any], tags: list[str]) -> None:
    snapshot = Snapshot(streams=streams, documents=documents, tags=tags)
    assert Snapshot.model_validate_json(snapshot.model_dump_json()) == snapshot


framed_record = st.binary(min_size=1, max_size=600)  # any bytes, newlines included (binary COPY tuples)


def feed_framed(
    chunker: RecordChunker, rows: list[bytes], cuts: list[int], keys: list[str] | None = None
) -> list[Any]:
    chunks: list[Any] = []
    for start, stop in pairwise([0, *cuts, len(rows)]):
        batch = rows[start:stop]
        ends = list(accumulate(map(len, batch)))
        chunks += chunker.feed_framed(b"".join(batch), ends, None if keys is None else keys[start:stop])
    last = chunker.finish()
    return chunks + ([last] if last else [])


def _framed(rows: list[bytes], params: ChunkerParams, seed: int) -> list[int]:
    """FORMAT.md §10 for records that are not lines: the whole record is hashed, n is its length."""
    scale = 2**32 // (params.avg_size - params.min_size)
    counts, size = [0], 0
    for row in rows:
        if size and size + len(row) > params.max_size:
            counts.append(0)
            size = 0
        counts[-1] += 1
        size += len(row)
        if size >= params.min_size and (zlib.crc32(row, seed) < len(row) * scale or size >= params.max_size):
            counts.append(0)
            size = 0
    return [count for count in counts if count]


@given(rows=st.lists(framed_record, max_size=120), data=st.data(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_framed_records_are_cut_between_records_by_section_10(
    rows: list[bytes], data: st.DataObject, seed: int
) -> None:
    keys = [str(n // 7).zfill(4) for n in range(len(rows))]
    chunks = feed_framed(RecordChunker(PARAMS, seed), rows, data.draw(split_points(len(rows))), keys)
    assert [chunk.records for chunk in chunks] == _framed(rows, PARAMS, seed)
    position = 0
    for chunk in chunks:
        assert chunk.data == b"".join(rows[position : position + chunk.records])
        chunk_keys = keys[position : position + chunk.records]
        assert (chunk.zone_min, chunk.zone_max) == (min(chunk_keys), max(chunk_keys))
        position += chunk.records
    assert position == len(rows)


@given(
    prefix=st.lists(framed_record, max_size=120),
    inserted=st.lists(framed_record, max_size=120),
    suffix=st.lists(framed_record, min_size=60, max_size=150),
)
@settings(max_examples=60)
def test_framed_insertion_only_changes_blobs_near_it(
    prefix: list[bytes], inserted: list[bytes], suffix: list[bytes]
) -> None:
    before = [c.data for c in feed_framed(RecordChunker(PARAMS, 5), prefix + suffix, [])]
    after = [c.data for c in feed_framed(RecordChunker(PARAMS, 5), prefix + inserted + suffix, [])]
    common_tail = 0
    while common_tail < min(len(before), len(after)) and before[-1 - common_tail] == after[-1 - common_tail]:
        common_tail += 1
    assert sum(map(len, before[len(before) - common_tail :])) >= sum(map(len, suffix)) - 4 * PARAMS.max_size
