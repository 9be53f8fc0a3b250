"""Helpers for the operator tests: small repositories, synthetic snapshots, CLI runs, small databases."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from lifeboat.repo import ChunkerParams, KdfParams
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository

PASSPHRASE = "correct horse battery staple"
FAST_KDF = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
SMALL_CHUNKS = ChunkerParams(min_size=2 * 1024, avg_size=8 * 1024, max_size=32 * 1024)
SMALL_PACK = 64 * 1024
LIFEBOAT = [sys.executable, "-m", "lifeboat"]


def small_repo(location: str | Path, *, encrypt: bool = True, passphrase: str = PASSPHRASE) -> Repository:
    return Repository.init(
        location,
        passphrase if encrypt else None,
        encrypt=encrypt,
        chunker=SMALL_CHUNKS,
        pack_size=SMALL_PACK,
        kdf=FAST_KDF,
    )


def rows(count: int, *, seed: int, start: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [
        f"{n}\tagent-{n % 40:04d}\t{rng.randbytes(rng.randint(5, 90)).hex()}\n".encode()
        for n in range(start, start + count)
    ]


def add_snapshot(
    repo: Repository,
    records: list[bytes],
    *,
    time: datetime | None = None,
    tags: list[str] | None = None,
    hostname: str = "host-a",
    database: str = "letta",
) -> Snapshot:
    """A snapshot of one stream holding ``records`` (no PostgreSQL involved)."""
    with repo.lock(), repo.writer() as writer:
        stream = writer.write_stream("table:letta.rows", [records], {"schema": "letta", "table": "rows"})
    extra = {"time": time} if time is not None else {}
    snapshot = Snapshot(
        tags=tags or [],
        hostname=hostname,
        streams=[stream],
        documents={"source": {"database": database}},
        **extra,
    )
    repo.save_snapshot(snapshot)
    return snapshot


def stream_records(repo: Repository, snapshot_id: str) -> list[bytes]:
    snapshot = repo.read_snapshot(snapshot_id)
    return list(repo.iter_records(snapshot.streams[0]))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as an operator runs it."""
    full_env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, **(env or {})}
    return subprocess.run([*LIFEBOAT, *args], capture_output=True, text=True, env=full_env, timeout=900)
