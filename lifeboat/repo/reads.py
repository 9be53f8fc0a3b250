"""Reading many blobs in order: blobs stored next to each other in one pack are fetched with one
ranged read, so the number of requests follows the bytes read rather than the number of blobs (a
request to S3 costs more CPU than decrypting and decompressing a small blob).

Each blob is still decrypted and authenticated on its own (``decode_blob``, under its own id and
size from the index); a group whose read fails or comes back short is read again blob by blob,
so the error names the blob, exactly as a single read would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from lifeboat.repo.blobs import decode_blob
from lifeboat.repo.config import pack_name
from lifeboat.repo.parts import OpenRepository

# Plaintext bytes one request may bring (a group of adjacent blobs; a bigger blob comes alone):
# with ``prefetch`` groups in flight, memory stays a few times this.
GROUP_RAW_BYTES = 2 * 1024 * 1024


def read_blobs(
    repo: OpenRepository, blob_ids: Iterable[str], *, prefetch: int, trust_aead: bool
) -> Iterator[tuple[str, bytes]]:
    """Blobs in the given order, ``prefetch`` groups fetched ahead in threads."""
    with ThreadPoolExecutor(max_workers=max(1, prefetch), thread_name_prefix="lifeboat-read") as pool:
        window: deque[tuple[list[str], Future[list[bytes]]]] = deque()
        for group in adjacent_groups(repo, blob_ids):
            window.append((group, pool.submit(_read_group, repo, group, trust_aead)))
            if len(window) > prefetch:
                done, future = window.popleft()
                yield from zip(done, future.result(), strict=True)
        while window:
            done, future = window.popleft()
            yield from zip(done, future.result(), strict=True)


def adjacent_groups(repo: OpenRepository, blob_ids: Iterable[str]) -> Iterator[list[str]]:
    """Runs of consecutive ids whose blobs follow each other in one pack (an id the index does not
    know is a group of its own, so that reading it raises as a single read does)."""
    group: list[str] = []
    pack, end, raw = "", -1, 0
    for blob_id in blob_ids:
        location = repo.index.get(blob_id)
        joins = (
            location is not None
            and group
            and (location.pack_id, location.offset) == (pack, end)
            and raw + location.raw_size <= GROUP_RAW_BYTES
        )
        if group and not joins:
            yield group
            group, raw = [], 0
        group.append(blob_id)
        if location is None:
            yield group
            group, pack, end, raw = [], "", -1, 0
        else:
            pack, end, raw = location.pack_id, location.offset + location.length, raw + location.raw_size
    if group:
        yield group


def _read_group(repo: OpenRepository, group: list[str], trust_aead: bool) -> list[bytes]:
    found = [repo.index.get(blob_id) for blob_id in group]
    locations = [location for location in found if location is not None]
    if len(group) == 1 or len(locations) < len(group):
        return [repo.read_blob(blob_id, trust_aead=trust_aead) for blob_id in group]
    start = locations[0].offset
    length = locations[-1].offset + locations[-1].length - start
    try:
        body = repo.backend.get(pack_name(locations[0].pack_id), start, length)
    except FileNotFoundError:
        body = b""
    if len(body) != length:  # missing or truncated: each blob's own read says which
        return [repo.read_blob(blob_id, trust_aead=trust_aead) for blob_id in group]
    return [
        decode_blob(
            repo.keys,
            repo.sealer,
            blob_id,
            body[location.offset - start : location.offset - start + location.length],
            location.raw_size,
            trust_aead=trust_aead,
        )
        for blob_id, location in zip(group, locations, strict=True)
    ]
