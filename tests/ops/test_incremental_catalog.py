"""An incremental backup's agent catalog: the parent's entries of agents proven unchanged, the
server's for the others, and always exactly what the catalog query gives for the live database."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from support import small_repo

from lifeboat.letta.catalog import CATALOG_AGENT_ROWS, CATALOG_LINKED_ROWS, CATALOG_SQL, catalog_from_rows
from lifeboat.ops import incremental
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.backup import run_backup
from lifeboat.ops.incremental_catalog import KeyProof, proof_of
from lifeboat.ops.incremental_plan import Emit, Keep, Read
from lifeboat.ops.snapshot_catalog import read_snapshot


def test_the_dependencies_name_every_table_the_catalog_reads() -> None:
    read = set(re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\s", CATALOG_SQL))
    assert read == set(CATALOG_AGENT_ROWS) | set(CATALOG_LINKED_ROWS)
    assert all(link in CATALOG_AGENT_ROWS for _column, link, _link_column in CATALOG_LINKED_ROWS.values())


@dataclass(frozen=True)
class _Blob:
    id: str
    zone_min: str | None
    zone_max: str | None
    records: int = 1


def test_a_proof_holds_kept_runs_and_copied_keys_only() -> None:
    a, b, c = _Blob("1", "a", "c"), _Blob("2", "d", "f"), _Blob("3", "g", "k")
    segments = [Keep([a]), Emit([b], "d"), Read("d", "f", ("e",)), Emit([b], "f"), Keep([c])]
    proof = proof_of("agent_id", segments, [a, b, c])
    assert [value for value in "abcdefghijkl" if proof.identical(value)] == list("abcdfghijk")
    assert proof.unproven("agent_id", list("0abcdefghijkl")) == ["0", "e", "l"]
    assert proof.unproven("id", list("ab")) == ["a", "b"]
    assert proof.identical_by("agent_id", "b") and not proof.identical_by("id", "b")
    assert not proof.identical_by("agent_id", None)
    assert not any(proof_of("agent_id", [Read(None, None)], [a]).identical(value) for value in "abc")
    assert proof_of("agent_id", [Keep([a, b]), Keep([c])], [a, b, c]).everything
    assert proof_of(None, [], []).everything  # an empty table then and now
    assert not proof_of("agent_id", [Keep([a])], [a, b]).everything


def _live_catalog(dsn: str) -> list[object]:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET search_path TO letta")
        return list(catalog_from_rows(conn.execute(CATALOG_SQL).fetchall()))


def _nth_agent(n: int) -> str:
    return f"(SELECT id FROM agents ORDER BY id OFFSET {n} LIMIT 1)"


# Each edit changes what some entry shows, above all by deleting (which leaves no newer row version).
_EDITS = {
    "runs deleted": f"DELETE FROM runs WHERE agent_id = {_nth_agent(3)}",
    "tag deleted": f"DELETE FROM agents_tags WHERE (agent_id, tag) = (SELECT agent_id, tag FROM agents_tags "
    f"WHERE agent_id = {_nth_agent(5)} ORDER BY tag LIMIT 1)",
    "block edited": f"UPDATE block SET value = value || ' (edited)' WHERE id = (SELECT block_id FROM blocks_agents "
    f"WHERE agent_id = {_nth_agent(8)} ORDER BY block_id LIMIT 1)",
    "block detached": f"DELETE FROM blocks_agents WHERE (agent_id, block_id) = (SELECT agent_id, block_id "
    f"FROM blocks_agents WHERE agent_id = {_nth_agent(11)} ORDER BY block_id LIMIT 1)",
    "passage deleted": "DELETE FROM archival_passages WHERE id = (SELECT p.id FROM archival_passages p "
    "JOIN archives_agents aa ON aa.archive_id = p.archive_id ORDER BY aa.agent_id DESC, p.id LIMIT 1)",
    "newest message deleted": f"DELETE FROM messages WHERE id = (SELECT id FROM messages WHERE agent_id = "
    f"{_nth_agent(14)} ORDER BY sequence_id DESC LIMIT 1)",
    "agent renamed": f"UPDATE agents SET name = name || ' (renamed)' WHERE id = {_nth_agent(17)}",
}


@pytest.mark.parametrize("edit", list(_EDITS))
def test_the_catalog_of_an_incremental_backup_is_the_live_catalog(
    letta_db, tmp_path: Path, edit: str
) -> None:
    repo = small_repo(tmp_path / "repo")
    run_backup(repo, letta_db.admin_dsn)
    before = _live_catalog(letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO letta")
        assert conn.execute(_EDITS[edit]).rowcount >= 1
    after = _live_catalog(letta_db.admin_dsn)
    assert after != before  # the edit shows in the catalog

    incremental = run_backup(repo, letta_db.admin_dsn)
    assert incremental.incremental.parent is not None
    assert layout.letta_document(incremental.snapshot).agents == after
    kept = incremental.incremental.agents_kept
    assert kept is not None and 0 < kept < len(after)


def test_entries_of_an_unchanged_deployment_are_all_kept(letta_db, tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    first = run_backup(repo, letta_db.admin_dsn)
    assert first.incremental.agents_kept is None
    again = run_backup(repo, letta_db.admin_dsn)
    agents = layout.letta_document(again.snapshot).agents
    assert agents == layout.letta_document(first.snapshot).agents == _live_catalog(letta_db.admin_dsn)
    assert agents is not None and again.incremental.agents_kept == len(agents) > 0
    # the catalog is still where a reader sets it aside (before runs_in_flight), not parsed whole
    assert layout.held_catalog(read_snapshot(repo, again.snapshot.id)) is not None
    full = run_backup(repo, letta_db.admin_dsn, full=True)
    assert full.incremental.agents_kept is None


def test_a_failed_copy_does_not_leave_the_catalog_waiting(letta_db, tmp_path: Path, monkeypatch) -> None:
    repo = small_repo(tmp_path / "repo")
    run_backup(repo, letta_db.admin_dsn)

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("copy failed")

    monkeypatch.setattr(incremental, "copy_table", failing)
    outcome: list[BaseException] = []

    def backup() -> None:
        try:
            run_backup(repo, letta_db.admin_dsn)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=backup, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and len(outcome) == 1 and "copy failed" in str(outcome[0])


def test_unproven_values_are_those_not_identical() -> None:
    rng = random.Random(15)
    for _ in range(200):
        points = sorted(rng.sample(range(100), 2 * rng.randint(0, 6)))
        ranges = [(f"{low:02}", f"{high:02}") for low, high in zip(points[::2], points[1::2], strict=True)]
        keys = frozenset(f"{value:02}" for value in rng.sample(range(100), 5))
        proof = KeyProof("k", lows=tuple(r[0] for r in ranges), highs=tuple(r[1] for r in ranges), keys=keys)
        values = sorted(f"{value:02}" for value in rng.sample(range(100), 40))
        assert proof.unproven("k", values) == [value for value in values if not proof.identical(value)]


def test_the_catalog_waits_for_the_proofs_of_its_tables_only() -> None:
    """The catalog asks for the proofs of the tables it reads: it has them as soon as those plans
    are made (the other copies may still run), or once every copy ended, whichever comes first."""
    from lifeboat.ops.incremental_catalog import PROVING_TABLES, KeyProofs

    proofs = KeyProofs()
    got: list[dict[str, KeyProof]] = []
    waiting = threading.Thread(target=lambda: got.append(proofs.wait("letta", PROVING_TABLES)))
    waiting.start()
    for table in sorted(PROVING_TABLES)[:-1]:
        proofs.record("letta", table, KeyProof("id", everything=True))
    waiting.join(0.2)
    assert waiting.is_alive()  # one table still without a proof
    proofs.record("other", sorted(PROVING_TABLES)[-1], KeyProof("id"))  # another schema's: not it
    waiting.join(0.2)
    assert waiting.is_alive()
    proofs.record("letta", sorted(PROVING_TABLES)[-1], KeyProof("id"))
    waiting.join(5)
    assert not waiting.is_alive() and set(got[0]) == set(PROVING_TABLES)
    unfinished = KeyProofs()
    unfinished.finish()  # the copies ended without every proof: what there is
    assert unfinished.wait("letta", PROVING_TABLES) == {}
