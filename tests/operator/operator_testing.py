"""Helpers for the operator tests: small repositories, synthetic snapshots, CLI runs, small databases."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from dbcompare import table_digests
from psycopg import sql
from support import FAST_KDF, LIFEBOAT, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, cli, small_repo

from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository

# re-exported for the operator tests: the shared helpers live in tests/support.py
__all__ = ["FAST_KDF", "LIFEBOAT", "PASSPHRASE", "SMALL_CHUNKS", "SMALL_PACK", "cli", "small_repo"]


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


# -- a small Letta-shaped database (seconds to back up and restore) ------------------------------

HEAD_REVISION = "1c28e167b74f"


def make_small_db(
    cluster: Any,
    name: str,
    *,
    vector: bool = True,
    revision: str | None = HEAD_REVISION,
    agents: int = 30,
) -> str:
    """A database laid out like Letta's (schema ``letta``, search_path, vector inside it) with three
    marker tables; returns its superuser DSN."""
    cluster.create_database(name)
    dsn = cluster.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA letta")
        conn.execute(sql.SQL("ALTER DATABASE {} SET search_path TO letta").format(sql.Identifier(name)))
        if vector:
            conn.execute("CREATE EXTENSION vector WITH SCHEMA letta")
        conn.execute("CREATE TABLE letta.agents (id text PRIMARY KEY, name text NOT NULL)")
        conn.execute(
            "CREATE TABLE letta.messages (id text PRIMARY KEY, agent_id text REFERENCES letta.agents(id), "
            "content text)"
        )
        conn.execute("CREATE TABLE letta.block (id text PRIMARY KEY, value text)")
        conn.execute("CREATE TABLE letta.alembic_version (version_num varchar(32) PRIMARY KEY)")
        if revision:
            conn.execute("INSERT INTO letta.alembic_version VALUES (%s)", (revision,))
    add_rows(dsn, agents=agents, messages=40, seed=0)
    return dsn


def add_rows(dsn: str, *, agents: int = 0, messages: int = 40, seed: int = 0) -> None:
    """More agents and messages (so the next backup differs)."""
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = conn.execute("SELECT count(*) FROM letta.agents").fetchone()[0]  # type: ignore[index]
        for number in range(start, start + agents):
            conn.execute(
                "INSERT INTO letta.agents VALUES (%s, %s)", (f"agent-{number:05d}", f"agent {number}")
            )
        ids = [r[0] for r in conn.execute("SELECT id FROM letta.agents")]
        with conn.cursor().copy("COPY letta.messages (id, agent_id, content) FROM STDIN") as copy:
            for _ in range(messages * max(1, len(ids) // 10)):
                copy.write_row(
                    (f"message-{rng.getrandbits(64):016x}", rng.choice(ids), rng.randbytes(200).hex())
                )


digests = table_digests  # the one table digest (tests/dbcompare.py)


def retime(repo: Repository, snapshot_id: str, when: datetime) -> None:
    """Rewrite a manifest with another time (tests of time-based retention on real backups)."""
    snapshot = repo.read_snapshot(snapshot_id)
    repo.save_snapshot(snapshot.model_copy(update={"time": when}))


def corrupt_a_pack(repo: Repository) -> str:
    """Flip bytes in the middle of the largest pack (its blobs then fail to decrypt); returns its name."""
    largest = max(repo.backend.list("data/"), key=lambda info: info.size)
    path = Path(repo.backend.url) / largest.name
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 64):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return largest.name
