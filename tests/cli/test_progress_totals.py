"""Progress bars of restores and drills carry the snapshot's true totals (bytes, rows) from its manifest."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from lifeboat.cli import output, progress
from lifeboat.repo.manifest import BlobRef, Snapshot, Stream


class _Repository:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def load_snapshot(self, ref: str) -> Snapshot:
        assert ref == "latest"
        return self.snapshot


def test_restore_bar_has_the_true_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = [BlobRef(id=f"{n:064x}", size=10, raw_size=1000 * n, records=7 * n) for n in (1, 2)]
    snapshot = Snapshot(streams=[Stream(name="table:letta.messages", blobs=blobs)])
    screen = io.StringIO()
    monkeypatch.setattr(output, "err_console", Console(file=screen, force_terminal=True, width=100))
    with progress.restore_progress("restore", _Repository(snapshot), "latest") as bar:
        assert bar._progress is not None
        [task] = bar._progress.tasks
        assert task.total == 3000
        assert task.description == f"restore {snapshot.short_id} (21 rows)"
        bar.advance(3000)
        assert task.finished
    output.set_json(True)
    try:  # no bar in --json mode (stdout carries the document, stderr only errors)
        with progress.restore_progress("restore", _Repository(snapshot), "latest") as quiet:
            assert quiet._progress is None
    finally:
        output.set_json(False)


def test_check_read_data_reports_bytes_against_the_true_total(tmp_path: Path) -> None:
    from support import small_repo

    from lifeboat.repo.writer import RecordBatch

    repo = small_repo(tmp_path / "repo")
    with repo.lock(), repo.writer() as writer:
        records = [f"{n:06d}\t{'x' * (n % 97)}\n".encode() for n in range(20_000)]
        stream = writer.write_stream("table:t", [RecordBatch(records)], {})
    repo.save_snapshot(Snapshot(streams=[stream]))
    heard: list[tuple[int, int]] = []
    report = repo.check(read_data=True, progress=lambda done, total: heard.append((done, total)))
    assert report.ok and report.packs_read == len(heard) > 1
    total = sum(repo.stored_packs().values())
    assert heard[-1] == (total, total) and all(t == total for _, t in heard)
    assert [d for d, _ in heard] == sorted(d for d, _ in heard)
