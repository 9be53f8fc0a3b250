"""Throughput of the write path (chunk + hash + zstd + AES-GCM + pack + local put). Not a test.

    .venv/bin/python tests/repo/bench_writer.py [MiB per stream] [streams]

Rows look like COPY text of a messages table: ids, an agent key, JSON-ish text.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time

from lifeboat.repo import KdfParams, Repository


def rows_batches(mib: int, seed: int, batch_bytes: int = 1 << 20) -> list[tuple[bytes, list[str]]]:
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(2, 9)).hex() for _ in range(5000)]
    batches, rows, keys, size, total, number = [], [], [], 0, 0, 0
    while total < mib << 20:
        agent = f"agent-{number // 400:08x}"
        text = " ".join(rng.choices(words, k=rng.randint(5, 60)))
        row = f'message-{number}\t{agent}\t{{"role": "user", "text": "{text}"}}\t2025-01-01 00:00:00+00\n'.encode()
        rows.append(row)
        keys.append(agent)
        size += len(row)
        total += len(row)
        number += 1
        if size >= batch_bytes:
            batches.append((b"".join(rows), keys))
            rows, keys, size = [], [], 0
    if rows:
        batches.append((b"".join(rows), keys))
    return batches


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    data = [rows_batches(mib, seed) for seed in range(streams)]
    raw = sum(len(batch) for stream in data for batch, _ in stream)
    kdf = KdfParams(time_cost=1, memory_cost=8192, parallelism=1)
    with tempfile.TemporaryDirectory() as directory:
        for threads in (1, streams):
            repo = Repository.init(f"{directory}/repo{threads}", "bench", kdf=kdf)  # fresh: no dedup
            start = time.perf_counter()
            with repo.writer() as writer:
                if threads == 1:
                    for number, stream in enumerate(data):
                        produce(writer, f"s{number}-{threads}", stream)
                else:
                    workers = [
                        threading.Thread(target=produce, args=(writer, f"s{n}-{threads}", stream))
                        for n, stream in enumerate(data)
                    ]
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()
            elapsed = time.perf_counter() - start
            stats = writer.stats
            print(
                f"{threads} producer(s): {raw / elapsed / 1e6:.0f} MB/s of rows ({raw / 1e6:.0f} MB in {elapsed:.2f}s), "
                f"stored {stats.bytes_added / 1e6:.0f} MB new, {stats.blobs_new} new / {stats.blobs_deduplicated} dedup blobs"
            )
        start = time.perf_counter()
        snapshot_bytes = 0
        for blob_id in list(repo.index.blob_ids()):
            snapshot_bytes += len(repo.read_blob(blob_id))
        elapsed = time.perf_counter() - start
        print(f"read back (ranged get + decrypt + zstd + verify): {snapshot_bytes / elapsed / 1e6:.0f} MB/s")


def produce(writer, name, stream) -> None:  # type: ignore[no-untyped-def]
    stream_writer = writer.open_stream(name)
    for batch, keys in stream:
        stream_writer.add(batch, keys)
    stream_writer.close()


if __name__ == "__main__":
    main()
