"""verify --against: the real deployment compared with its own snapshot, after restores, and after
defects only a reference can see (each found with its exact rows)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lifeboat.ops.agent_restore import run_agent_restore
from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import run_restore
from lifeboat.ops.verify_against import AgainstOptions, AgainstReport, verify_against
from lifeboat.repo.kdf import KdfParams
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase

Conn = psycopg.Connection[Any]


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository.init(
        tmp_path / "repo", "pass", kdf=KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    )


def differences(report: AgainstReport) -> dict[str, dict[str, Any]]:
    """Per differing table: the listed rows (sorted) and the changed columns."""
    return {
        t.table.split(".", 1)[1]: {
            "missing": sorted(t.missing_rows),
            "extra": sorted(t.extra_rows),
            "changed": sorted((c.key, tuple(c.columns)) for c in t.changed_rows),
        }
        for t in report.tables
        if t.missing or t.extra or t.changed
    }


def test_a_database_equals_its_own_snapshot(letta_db: LettaDatabase, repo: Repository) -> None:
    run_backup(repo, letta_db.admin_dsn)
    report = verify_against(repo, letta_db.dsn, AgainstOptions())
    assert report.equal and report.ok, differences(report)
    assert report.summary["rows_snapshot"] == report.summary["rows_database"] > 1000
    assert report.summary["tables"] == len(letta_db.facts["counts"])
    assert not report.agents and not report.sequences


def test_a_full_restore_is_proven_equal(letta_db: LettaDatabase, repo: Repository) -> None:
    run_backup(repo, letta_db.admin_dsn)
    target = f"{letta_db.dbname}_restored"
    try:
        run_restore(repo, "latest", letta_db.cluster.dsn(target))
        report = verify_against(repo, letta_db.cluster.dsn(target, "letta", "letta"), AgainstOptions(jobs=2))
    finally:
        letta_db.cluster.drop_database(target)
    assert report.equal and report.ok, differences(report)
    assert report.summary["rows_database"] == sum(letta_db.facts["counts"].values())


def test_an_agent_restore_is_proven_equal(letta_db: LettaDatabase, repo: Repository) -> None:
    agent_id = letta_db.facts["secret"]["agent_id"]
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE block SET value = 'overwritten' WHERE id IN "
            "(SELECT block_id FROM blocks_agents WHERE agent_id = %s AND block_label = 'persona')",
            (agent_id,),
        )
        conn.execute("DELETE FROM agents_tags WHERE agent_id = %s", (agent_id,))
        conn.execute("DELETE FROM agent_environment_variables WHERE agent_id = %s", (agent_id,))
    broken = verify_against(repo, letta_db.dsn, AgainstOptions(agents=[agent_id]))
    assert set(differences(broken)) == {"block", "agents_tags", "agent_environment_variables"}
    assert [a.agent_id for a in broken.agents if a.missing] == [agent_id]

    run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id])

    report = verify_against(repo, letta_db.dsn, AgainstOptions(agents=[agent_id]))
    assert report.equal, differences(report)
    assert report.summary["rows_snapshot"] > 50  # messages, runs, steps, blocks, tools... of the agent


# -- defects only a reference can catch ----------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    name: str
    inject: Callable[[Conn, dict[str, Any]], tuple[dict[str, dict[str, Any]], set[str]]]

    def __str__(self) -> str:
        return self.name


def _empty() -> dict[str, Any]:
    return {"missing": [], "extra": [], "changed": []}


def lost_tag_links(conn: Conn, facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    agent_id = facts["agent_ids"]["lb-agent-04"]
    tags = [r[0] for r in conn.execute("SELECT tag FROM agents_tags WHERE agent_id = %s", (agent_id,))]
    conn.execute("DELETE FROM agents_tags WHERE agent_id = %s", (agent_id,))
    return {"agents_tags": {**_empty(), "missing": sorted(f"{agent_id}/{tag}" for tag in tags)}}, {agent_id}


def lost_identity_links(conn: Conn, facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    identity = facts["identities"][0]
    conn.execute("DELETE FROM identities_agents WHERE identity_id = %s", (identity["id"],))
    missing = sorted(f"{identity['id']}/{agent}" for agent in identity["agent_ids"])
    return {"identities_agents": {**_empty(), "missing": missing}}, set(identity["agent_ids"])


def _a_user_message(conn: Conn) -> tuple[str, str]:
    row = conn.execute(
        "SELECT id, agent_id FROM messages WHERE role = 'user' AND content::text LIKE '%%text%%' ORDER BY id LIMIT 1"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def truncated_message(conn: Conn, facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    message_id, agent_id = _a_user_message(conn)
    content = json.loads(
        conn.execute("SELECT content::text FROM messages WHERE id = %s", (message_id,)).fetchone()[0]
    )  # type: ignore[index]
    content[0]["text"] = content[0]["text"][:3]
    conn.execute("UPDATE messages SET content = %s::json WHERE id = %s", (json.dumps(content), message_id))
    return {"messages": {**_empty(), "changed": [(message_id, ("content",))]}}, {agent_id}


def shifted_timestamp(conn: Conn, facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    message_id, agent_id = _a_user_message(conn)
    conn.execute(
        "UPDATE messages SET created_at = created_at - interval '1 day' WHERE id = %s", (message_id,)
    )
    return {"messages": {**_empty(), "changed": [(message_id, ("created_at",))]}}, {agent_id}


def nudged_embedding(conn: Conn, facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    passage_id, archive_id = conn.execute(
        "SELECT id, archive_id FROM archival_passages ORDER BY id LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    # the smallest step a float4 can take at the first non-zero component: one bit of one value
    conn.execute(
        "UPDATE archival_passages SET embedding = (SELECT (a[1:i-1] || ARRAY[a[i] * 1.0000001::real] || a[i+1:4096])::vector "
        "FROM (SELECT embedding::real[] AS a, (SELECT min(n) FROM generate_subscripts(embedding::real[], 1) n "
        "WHERE (embedding::real[])[n] <> 0) AS i) x) WHERE id = %s",
        (passage_id,),
    )
    agents = {
        r[0]
        for r in conn.execute("SELECT agent_id FROM archives_agents WHERE archive_id = %s", (archive_id,))
    }
    return {"archival_passages": {**_empty(), "changed": [(passage_id, ("embedding",))]}}, agents


def split_block_sharing(conn: Conn, facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """The team block, shared by ten agents, becomes a private copy for the last of them."""
    shared = next(b for b in facts["shared_blocks"] if b["label"] == "team")
    agent_id = shared["agent_ids"][-1]
    copy_id = "block-00000000-0000-4000-8000-00000000b10c"
    conn.execute(
        'INSERT INTO block (id, value, "limit", label, is_template, organization_id, is_deleted, version, read_only, '
        'created_at, updated_at, metadata_) SELECT %s, value, "limit", label, is_template, organization_id, is_deleted, '
        "version, read_only, created_at, updated_at, metadata_ FROM block WHERE id = %s",
        (copy_id, shared["id"]),
    )
    conn.execute(
        "UPDATE blocks_agents SET block_id = %s WHERE agent_id = %s AND block_id = %s",
        (copy_id, agent_id, shared["id"]),
    )
    return {
        "block": {**_empty(), "extra": [copy_id]},
        "blocks_agents": {
            **_empty(),
            "missing": [f"{agent_id}/{shared['id']}"],
            "extra": [f"{agent_id}/{copy_id}"],
        },
    }, {agent_id}


LOSSES = [
    Loss("lost tag links", lost_tag_links),
    Loss("lost identity links", lost_identity_links),
    Loss("truncated message", truncated_message),
    Loss("shifted timestamp", shifted_timestamp),
    Loss("nudged embedding float", nudged_embedding),
    Loss("block sharing split", split_block_sharing),
]


@pytest.mark.parametrize("loss", LOSSES, ids=str)
def test_against_finds_the_exact_rows(letta_db: LettaDatabase, repo: Repository, loss: Loss) -> None:
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        expected, agents = loss.inject(conn, letta_db.facts)

    report = verify_against(repo, letta_db.dsn, AgainstOptions(since_snapshot=True))

    assert differences(report) == expected
    assert {a.agent_id for a in report.agents} == agents
    assert not report.equal and not report.ok  # none of these carries a timestamp after the snapshot
    assert report.summary["unexplained"] == sum(len(v) for d in expected.values() for v in d.values())


def test_since_snapshot_tells_traffic_from_silent_changes(letta_db: LettaDatabase, repo: Repository) -> None:
    run_backup(repo, letta_db.admin_dsn)
    time.sleep(0.01)
    agent_id = letta_db.facts["agent_ids"]["lb-agent-05"]
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        # what the server does on a memory edit: new value, updated_at = now()
        conn.execute(
            "UPDATE block SET value = value || ' (edited)', updated_at = now() WHERE id IN "
            "(SELECT block_id FROM blocks_agents WHERE agent_id = %s AND block_label = 'human')",
            (agent_id,),
        )
    traffic = verify_against(repo, letta_db.dsn, AgainstOptions(since_snapshot=True))
    assert not traffic.equal and traffic.ok
    assert (traffic.summary["after_snapshot"], traffic.summary["unexplained"]) == (1, 0)

    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute("UPDATE agents SET description = 'tampered' WHERE id = %s", (agent_id,))
    silent = verify_against(repo, letta_db.dsn, AgainstOptions(since_snapshot=True))
    assert not silent.ok
    assert (silent.summary["after_snapshot"], silent.summary["unexplained"]) == (1, 1)


def test_drill_proves_fidelity_and_says_what_differs(
    letta_db: LettaDatabase, repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.ops import restore as restore_module
    from lifeboat.ops.drill import DrillOptions, run_drill

    run_backup(repo, letta_db.admin_dsn)
    target = letta_db.cluster.dsn(f"{letta_db.dbname}_drill")
    passed = run_drill(repo, DrillOptions(target_dsn=target, report_dir=tmp_path / "passed", record=False))
    assert passed.ok and passed.equal is True, passed.reason
    assert "compare" in [p.name for p in passed.phases]
    html = Path(passed.files["html"]).read_text()
    assert 'id="compare"' in html and "equal to the snapshot" in html

    real_restore = restore_module.run_restore
    agent_id = letta_db.facts["agent_ids"]["lb-agent-04"]

    def restore_that_loses_tags(*args: Any, **kwargs: Any) -> Any:
        result = real_restore(*args, **kwargs)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("DELETE FROM letta.agents_tags WHERE agent_id = %s", (agent_id,))
        return result

    monkeypatch.setattr(restore_module, "run_restore", restore_that_loses_tags)
    failed = run_drill(repo, DrillOptions(target_dsn=target, report_dir=tmp_path / "failed", record=False))
    assert not failed.ok and failed.failed_phase == "compare" and failed.exit_code == 3
    assert failed.equal is False and failed.compare_summary["missing"] == 2
    assert failed.compare_differences == ["letta.agents_tags: 2 missing, 0 extra, 0 changed"]
    assert "DIFFERS from the snapshot" in Path(failed.files["html"]).read_text()


def test_an_agent_nobody_knows_is_a_usage_error(letta_db: LettaDatabase, repo: Repository) -> None:
    from lifeboat.errors import UsageError

    run_backup(repo, letta_db.admin_dsn)
    with pytest.raises(UsageError, match="agent-00000000-0000-4000-8000-000000000000"):
        verify_against(
            repo, letta_db.dsn, AgainstOptions(agents=["agent-00000000-0000-4000-8000-000000000000"])
        )
