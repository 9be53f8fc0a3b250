"""Issue 14, must-show 3: an agent from a 0.14.0 snapshot restored into a live 0.16.8 server (in
place after deleting it there, and as a copy) answers a message, and no other agent's rows change;
a newer snapshot into an older database is refused."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from lifeboat.errors import UnsafeRestore
from lifeboat.letta.revisions import HEAD_0_16_8
from lifeboat.ops.agent_restore import Mode, Options
from lifeboat.ops.agent_upgrade import run_agent_restore_any_release
from lifeboat.ops.backup import run_backup
from lifeboat.ops.upgrade import run_upgrade_restore
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.letta_schema import LETTA_PASSWORD, LETTA_ROLE
from lifeboat.sandbox.postgres import Cluster

Loader = Callable[[str, Cluster], LettaDatabase]


def _others(dsn: str, excluded: set[str]) -> dict[str, list[str]]:
    """Every row of every table with an agent reference, except the excluded agents' rows."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'letta' "
            "AND column_name IN ('agent_id', 'manager_agent_id') ORDER BY 1"
        ).fetchall()
        for table, column in [*tables, ("agents", "id")]:
            rows = conn.execute(
                sql.SQL(
                    "SELECT t::text FROM letta.{} t WHERE {} IS NULL OR NOT ({} = ANY(%s)) ORDER BY 1"
                ).format(sql.Identifier(table), sql.Identifier(column), sql.Identifier(column)),
                (sorted(excluded),),
            ).fetchall()
            found[f"{table}.{column}"] = [r[0] for r in rows]
    return found


def _ask(server, agent_id: str, text: str) -> None:
    reply = server.post(f"/v1/agents/{agent_id}/messages", {"messages": [{"role": "user", "content": text}]})
    assert any(text in str(m) for m in reply["messages"]), reply


@pytest.mark.letta_server
def test_agent_from_0_14_snapshot_into_live_0_16_8(
    pg_cluster: Cluster, repo: Repository, release_db_factory: Loader, letta_server
) -> None:
    old = release_db_factory("0.14.0", pg_cluster)
    snapshot = run_backup(repo, old.admin_dsn).snapshot
    live_name = f"{old.dbname}_live"
    run_upgrade_restore(repo, snapshot.id, pg_cluster.dsn(live_name), "head")  # the user's upgraded server
    live = pg_cluster.dsn(live_name)
    try:
        server = letta_server(pg_cluster.dsn(live_name, LETTA_ROLE, LETTA_PASSWORD))
        agent_id = old.facts["agent_ids"]["rl-agent-1"]
        before = _others(live, {agent_id})
        server.delete(f"/v1/agents/{agent_id}")

        report = run_agent_restore_any_release(
            repo, live, snapshot_ref=snapshot.id, agent_ids=[agent_id], options=Options(mode=Mode.IN_PLACE)
        )
        assert report.snapshot == snapshot.id
        assert "upgraded to " + HEAD_0_16_8 in report.warnings[0], report.warnings
        assert not report.refused
        _ask(server, agent_id, "back in place after an upgrade")
        assert _others(live, {agent_id}) == before

        copied = run_agent_restore_any_release(
            repo, live, snapshot_ref=snapshot.id, agent_ids=[agent_id], options=Options(mode=Mode.COPY)
        )
        copy_id = copied.agents[0].new_id
        assert copy_id and copy_id != agent_id
        _ask(server, copy_id, "a copy from the old release")
        assert _others(live, {agent_id, copy_id}) == before
        server.stop()
    finally:
        pg_cluster.drop_database(live_name)


def test_newer_snapshot_into_older_database_is_refused(
    pg_cluster: Cluster, repo: Repository, release_db_factory: Loader
) -> None:
    new = release_db_factory("0.16.0", pg_cluster)
    old = release_db_factory("0.14.0", pg_cluster)
    snapshot = run_backup(repo, new.admin_dsn).snapshot
    agent_id = new.facts["agent_ids"]["rl-agent-0"]
    with pytest.raises(UnsafeRestore, match="newer than the live database"):
        run_agent_restore_any_release(repo, old.admin_dsn, snapshot_ref=snapshot.id, agent_ids=[agent_id])
