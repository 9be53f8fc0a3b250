"""The crash tests' victim: back up twice, SIGKILLing itself at the N-th file write."""

from __future__ import annotations

import os
import signal

from repo_testing import make_rows, row_key

from lifeboat.repo import LocalBackend, RecordBatch, Repository, Snapshot


class DyingBackend(LocalBackend):
    """A local backend that kills its process at the ``kill_at``-th put (never when 0).

    mode "before": die before writing anything; "torn": die leaving a half-written temporary file.
    """

    def __init__(self, root: str, kill_at: int, mode: str) -> None:
        super().__init__(root)
        self.kill_at, self.mode, self.puts = kill_at, mode, 0

    def put(self, name: str, data: bytes) -> None:
        self.puts += 1
        if self.puts == self.kill_at:
            if self.mode == "torn":
                path = self.root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                (path.parent / f".{path.name}.crash.tmp").write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        super().put(name, data)


def expected_tables() -> list[dict[str, list[bytes]]]:
    first = {"a": make_rows(1500, seed=10), "b": make_rows(800, seed=11)}
    second = {"a": first["a"] + make_rows(600, seed=12, start=1500), "b": make_rows(900, seed=13)}
    return [first, second]


def back_up_twice(root: str, passphrase: str, kill_at: int, mode: str) -> int:
    """Two backups (snapshot tags "0" and "1"); returns the number of puts if not killed."""
    backend = DyingBackend(root, kill_at, mode)
    repo = Repository.open(backend, passphrase)
    for number, tables in enumerate(expected_tables()):
        with repo.lock():
            with repo.writer() as writer:
                streams = [
                    writer.write_stream(name, [RecordBatch(rows, [row_key(r) for r in rows])])
                    for name, rows in tables.items()
                ]
            repo.save_snapshot(Snapshot(streams=streams, tags=[str(number)]))
    return backend.puts
