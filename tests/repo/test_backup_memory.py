"""What the writer and the process do for memory: the manifest is encoded once, the heap is trimmed
and set up with few arenas."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
from repo_testing import make_rows, row_key

from lifeboat.errors import CorruptRepository
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo.blobs import decompress
from lifeboat.repo.config import snapshot_name
from lifeboat.repo.heap import _malloc_trim, release_free_memory
from lifeboat.repo.repository import snapshot_aad


def test_the_manifest_is_stored_as_model_dump_json_gives_it(repo: Repository) -> None:
    rows = make_rows(300)
    with repo.lock(), repo.writer() as writer:
        stream = writer.write_stream("t", [RecordBatch(rows, [row_key(r) for r in rows])])
    catalog = [{"id": f"agent-{n}", "name": f'名前 "{n}"\u2028', "x": 1.5e-7 * n} for n in range(50)]
    snapshot = Snapshot(streams=[stream], tags=["é"], documents={"letta": {"agents": catalog}})
    repo.save_snapshot(snapshot)
    sealed = repo.backend.get(snapshot_name(snapshot.id))
    stored = decompress(repo.sealer.open(sealed, snapshot_aad(snapshot.id)))
    assert stored == snapshot.model_dump_json().encode()
    assert repo.load_snapshot(snapshot.id) == snapshot


def test_free_memory_is_given_back_where_the_c_library_can() -> None:
    release_free_memory()  # never fails, whatever the C library
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert _malloc_trim() is not None


def _compact_heap_in_a_fresh_process(**environment: str) -> bool:
    code = "from lifeboat.repo.heap import use_compact_heap; print(use_compact_heap())"
    env = {
        key: value for key, value in os.environ.items() if key not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env={**env, **environment}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return {"True\n": True, "False\n": False}[done.stdout]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_the_arena_limit_is_set_unless_the_environment_sets_one() -> None:
    assert _compact_heap_in_a_fresh_process() is True
    assert _compact_heap_in_a_fresh_process(MALLOC_ARENA_MAX="4") is False
    assert _compact_heap_in_a_fresh_process(GLIBC_TUNABLES="glibc.malloc.arena_max=4") is False


def test_a_scan_keeps_what_the_caller_asks_of_each_snapshot_oldest_first(repo: Repository) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    saved = [Snapshot(time=start + timedelta(days=n), tags=[f"t{n}"]) for n in (2, 0, 1)]
    for snapshot in saved:
        repo.save_snapshot(snapshot)
    repo.backend.put(snapshot_name("ab" * 32), b"not a manifest")
    seen: list[str] = []

    def keep(snapshot: Snapshot) -> Snapshot:
        seen.append(snapshot.id)
        return snapshot.header()

    kept, damaged = repo.scan_snapshots(keep)
    assert [header.tags for header in kept] == [["t0"], ["t1"], ["t2"]]
    assert all(header.streams == [] and header.documents == {} for header in kept)
    assert sorted(seen) == sorted(snapshot.id for snapshot in saved)
    assert list(damaged) == ["ab" * 32]
    with pytest.raises(CorruptRepository, match="ab" * 32):  # as listing the snapshots does
        repo.scan_snapshots(keep, strict=True)


def test_the_cycle_collector_runs_less_often_and_says_how_it_ran() -> None:
    """``fewer_collections`` (the CLI's process sets it at its start) raises only the young
    generation's threshold, and returns the thresholds it found."""
    code = (
        "import gc; from lifeboat.repo.heap import GC_GEN0_THRESHOLD, fewer_collections;"
        " before = gc.get_threshold(); returned = fewer_collections(); after = gc.get_threshold();"
        " print(after[0] >= GC_GEN0_THRESHOLD > before[0], after[1:] == before[1:], returned == before)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True True True\n"
