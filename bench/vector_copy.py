"""What binary COPY would save on ``vector(4096)`` columns: text against binary, out and in.

    .venv/bin/python bench/vector_copy.py --rows 4000

Builds a throwaway cluster with the ``vector`` extension and a table shaped like Letta's
``archival_passages`` embedding (1536 floats zero-padded to 4096, as bench/synthetic.py writes),
then times, on one connection, ``COPY ... TO STDOUT`` and ``COPY ... FROM STDIN`` in text and in
binary format, with the server's CPU seconds for each (the client only moves bytes). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402
from synthetic import vector_text  # noqa: E402

from lifeboat.sandbox.postgres import start_cluster  # noqa: E402


def backend_cpu(conn: psycopg.Connection) -> float:
    """CPU seconds of this connection's server process so far (user + system, from /proc)."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def copy_out(dsn: str, fmt: str) -> tuple[bytes, dict[str, float]]:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cpu, started = backend_cpu(conn), time.monotonic()
        parts = []
        with cur.copy(f"COPY v (id, embedding) TO STDOUT {fmt}") as stream:
            for chunk in stream:
                parts.append(bytes(chunk))
        seconds = time.monotonic() - started
        conn.commit()
        server = backend_cpu(conn) - cpu
    data = b"".join(parts)
    return data, {
        "seconds": round(seconds, 2),
        "server_cpu": round(server, 2),
        "bytes": len(data),
    }


def copy_in(dsn: str, fmt: str, data: bytes) -> dict[str, float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE v")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cpu = backend_cpu(conn)
        conn.commit()
        started = time.monotonic()
        with cur.copy(f"COPY v (id, embedding) FROM STDIN {fmt}") as stream:
            for offset in range(0, len(data), 1 << 20):
                stream.write(data[offset : offset + (1 << 20)])
        conn.commit()
        seconds = time.monotonic() - started
        server = backend_cpu(conn) - cpu
    return {"seconds": round(seconds, 2), "server_cpu": round(server, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=4000)
    args = parser.parse_args()
    rng = random.Random(5)
    pool = [f"{rng.uniform(-0.08, 0.08):.6f}" for _ in range(4096)]
    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="lifeboat-vecbench-") as workdir,
        start_cluster("pg18", base_dir=Path(workdir), durable=True) as cluster,
    ):
        cluster.execute("CREATE EXTENSION vector")
        cluster.execute("CREATE TABLE v (id text PRIMARY KEY, embedding vector(4096))")
        dsn = cluster.dsn()
        with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy("COPY v FROM STDIN") as stream:
            for row in range(args.rows):
                stream.write(f"passage-{row:08d}\t{vector_text(rng, pool)}\n".encode())
        for fmt, option in (("text", ""), ("binary", "(FORMAT binary)")):
            data, results[f"out_{fmt}"] = copy_out(dsn, option)
            results[f"in_{fmt}"] = copy_in(dsn, option, data)
    print(json.dumps({"rows": args.rows, **results}, indent=2))


if __name__ == "__main__":
    main()
