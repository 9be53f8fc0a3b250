"""Progress bars of restores and drills carry the snapshot's true totals (bytes, rows) from its manifest."""

from __future__ import annotations

import io

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
