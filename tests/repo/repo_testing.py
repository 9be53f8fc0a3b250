"""Helpers shared by the repository tests (importable because conftest puts this folder on sys.path)."""

from __future__ import annotations

import random

from support import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK

from lifeboat.repo import RecordBatch, Repository, Snapshot

# re-exported for the repository tests: the shared keys and sizes live in tests/support.py
__all__ = ["FAST_KDF", "PASSPHRASE", "SMALL_CHUNKS", "SMALL_PACK", "back_up", "make_rows", "row_key"]


def make_rows(count: int, *, seed: int = 0, start: int = 0, agents: int = 50) -> list[bytes]:
    """COPY-text-like rows: id, agent key, some text. Deterministic for a given seed."""
    rng = random.Random(seed)
    rows = []
    for number in range(start, start + count):
        text = rng.randbytes(rng.randint(5, 100)).hex()
        rows.append(f"{number}\tagent-{number % agents:04d}\t{text}\n".encode())
    return rows


def row_key(row: bytes) -> str:
    return row.split(b"\t", 2)[1].decode()


def back_up(repo: Repository, rows: list[bytes]) -> Snapshot:
    """A snapshot of one stream ``t`` of ``rows`` (keyed by :func:`row_key`), saved in ``repo``."""
    with repo.lock(), repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows, [row_key(r) for r in rows])])
    snapshot = Snapshot(streams=[stream])
    repo.save_snapshot(snapshot)
    return snapshot
