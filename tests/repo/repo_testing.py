"""Helpers shared by the repository tests (importable because conftest puts this folder on sys.path)."""

from __future__ import annotations

import random

from lifeboat.repo import ChunkerParams, KdfParams

FAST_KDF = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
SMALL_CHUNKS = ChunkerParams(min_size=2 * 1024, avg_size=8 * 1024, max_size=32 * 1024)
SMALL_PACK = 64 * 1024
PASSPHRASE = "correct horse battery staple"


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
