"""Drill documents in the repository, and the Prometheus textfile writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.ops.metrics import backup_metrics, drill_metrics, labels, parse, update_file
from lifeboat.repo.documents import list_documents, new_document_id, put_document, read_document
from lifeboat.repo.repository import Repository


def test_documents_are_sealed_sorted_and_bound_to_their_name(repo: Repository) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [
        put_document(repo, "drills", {"n": n}, new_document_id(start + timedelta(days=n))) for n in (2, 0, 1)
    ]
    assert [doc["n"] for _, doc in list_documents(repo, "drills")] == [0, 1, 2]
    assert [doc["n"] for _, doc in list_documents(repo, "drills", limit=2)] == [1, 2]
    stored = repo.backend.get(f"drills/{ids[0]}")
    assert b'"n"' not in stored  # encrypted
    other = new_document_id(start + timedelta(days=9))
    repo.backend.put(f"drills/{other}", stored)  # a document moved to another name does not open
    with pytest.raises(CorruptRepository):
        read_document(repo, "drills", other)
    assert len(list_documents(repo, "drills")) == 3  # and listing skips it
    with pytest.raises(UsageError):
        put_document(repo, "secrets", {})
    assert repo.check(read_data=True).ok  # documents are not part of the checked content


def test_metrics_file_merges_families_and_repositories(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.prom"
    path.write_text("# HELP other_metric Someone else's.\n# TYPE other_metric counter\nother_metric 5\n")
    update_file(path, backup_metrics("/a", success=True, seconds=1.5, bytes_added=10, snapshots=3, now=100.0))
    update_file(path, backup_metrics('/b"x', success=True, seconds=2.0, now=200.0))
    update_file(path, backup_metrics("/a", success=False, seconds=0.5, now=300.0))
    update_file(
        path,
        drill_metrics("/a", success=True, seconds=9.0, rto_seconds=3.0, phases={"data": 1.25}, now=400.0),
    )
    families = parse(path.read_text())
    a, b = labels(repository="/a"), labels(repository='/b"x')
    assert b == '{repository="/b\\"x"}'
    assert families["other_metric"].samples == {"": "5"} and families["other_metric"].type == "counter"
    assert families["lifeboat_backup_success"].samples == {a: "0", b: "1"}
    assert families["lifeboat_backup_last_success_timestamp_seconds"].samples == {a: "100.0", b: "200.0"}
    assert families["lifeboat_backup_last_run_timestamp_seconds"].samples[a] == "300.0"
    assert families["lifeboat_repository_snapshots"].samples == {a: "3"}
    assert families["lifeboat_drill_phase_seconds"].samples == {labels(repository="/a", phase="data"): "1.25"}
    assert families["lifeboat_drill_rto_seconds"].samples[a] == "3.0"
    text = path.read_text()
    assert text.count("# TYPE lifeboat_backup_success gauge") == 1
    assert not list(tmp_path.glob("*.tmp"))  # written through a temp file, renamed into place
