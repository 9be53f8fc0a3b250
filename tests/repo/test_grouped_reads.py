"""Blobs stored next to each other are read with one request (lifeboat.repo.reads): the same
plaintext in the same order, fewer requests, and damage inside a group still names its blob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from repo_testing import make_rows, row_key

from lifeboat.errors import CorruptBlob
from lifeboat.repo import RecordBatch, Repository
from lifeboat.repo.config import pack_name
from lifeboat.repo.reads import GROUP_RAW_BYTES, adjacent_groups


class CountingBackend:
    def __init__(self, backend: Any) -> None:
        self.backend, self.gets = backend, 0

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self.gets += 1
        return self.backend.get(name, offset, length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


def _stream_blobs(repo: Repository) -> tuple[list[str], list[bytes]]:
    rows = sorted(make_rows(6000, agents=60), key=row_key)
    with repo.writer() as writer:
        stream = writer.write_stream("messages", [RecordBatch(rows, [row_key(row) for row in rows])])
    return [ref.id for ref in stream.blobs], rows


def test_adjacent_blobs_are_read_with_one_request(repo: Repository) -> None:
    ids, rows = _stream_blobs(repo)
    groups = list(adjacent_groups(repo, ids))
    assert [blob for group in groups for blob in group] == ids
    assert len(groups) < len(ids) / 3  # one writer: its blobs follow each other in the packs
    for group in groups:
        assert sum(repo.index.get(b).raw_size for b in group) <= GROUP_RAW_BYTES or len(group) == 1  # type: ignore[union-attr]
    counting = CountingBackend(repo.backend)
    repo.backend = counting  # type: ignore[assignment]
    read = list(repo.read_blobs([*ids, ids[0]], prefetch=2))
    assert [blob_id for blob_id, _ in read] == [*ids, ids[0]]
    assert b"".join(data for _, data in read[:-1]) == b"".join(rows)
    assert counting.gets == len(groups) + 1


def test_a_damaged_blob_in_a_group_is_named(repo: Repository, repo_path: Path) -> None:
    ids, _ = _stream_blobs(repo)
    group = max(adjacent_groups(repo, ids), key=len)
    victim = group[len(group) // 2]
    location = repo.index.get(victim)
    assert location is not None and len(group) > 2
    path = repo_path / pack_name(location.pack_id)
    data = bytearray(path.read_bytes())
    data[location.offset + location.length // 2] ^= 0x40
    path.write_bytes(bytes(data))
    read: list[str] = []
    with pytest.raises(CorruptBlob, match=victim):
        for blob_id, _ in repo.read_blobs(ids):
            read.append(blob_id)
    assert victim not in read


def test_a_truncated_pack_is_read_blob_by_blob(repo: Repository, repo_path: Path) -> None:
    ids, _ = _stream_blobs(repo)
    group = max(adjacent_groups(repo, ids), key=len)
    location = repo.index.get(group[-1])
    assert location is not None
    path = repo_path / pack_name(location.pack_id)
    path.write_bytes(path.read_bytes()[: location.offset + 1])
    with pytest.raises(CorruptBlob, match=f"{group[-1]}.*truncated"):
        list(repo.read_blobs(group))
