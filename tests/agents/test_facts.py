"""The live facts an agent restore decides from, gathered on the real deployment's database: who
else uses an entity, and which live row has an entity's natural key (tools by name, identities by
identifier key and project) — the MATCH decisions, in place and as a copy into another
organization."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.letta.subgraph import collect
from lifeboat.ops.agent_restore import Action, Mode, Options, SharedPolicy, run_agent_restore
from lifeboat.ops.agent_restore.facts import gather, live_schema
from lifeboat.ops.agent_restore.source import SnapshotSource
from lifeboat.ops.backup import run_backup
from lifeboat.repo.repository import Repository


def _twin(conn: psycopg.Connection[Any], table: str, row_id: str, **changes: str) -> str:
    """Insert a copy of ``table``'s row ``row_id`` under a new id, with ``changes``; its id."""
    prefix = row_id.rsplit("-", 5)[0]
    new_id = f"{prefix}-{uuid.uuid4()}"
    conn.execute(
        sql.SQL("CREATE TEMP TABLE twin AS SELECT * FROM {} WHERE id = %s").format(
            sql.Identifier("letta", table)
        ),
        (row_id,),
    )
    for column, value in {"id": new_id, **changes}.items():
        conn.execute(sql.SQL("UPDATE twin SET {} = %s").format(sql.Identifier(column)), (value,))
    conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM twin").format(sql.Identifier("letta", table)))
    conn.execute("DROP TABLE twin")
    return new_id


def _new_org(conn: psycopg.Connection[Any]) -> str:
    org = f"org-{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO letta.organizations (id, name, privileged_tools) VALUES (%s, 'second org', false)",
        (org,),
    )
    return org


def _identity_of(letta_db: Any, agent_id: str) -> str:
    return next(i["id"] for i in letta_db.facts["identities"] if agent_id in i["agent_ids"])


def test_gather_sees_outside_users_and_natural_key_twins(letta_db, repo: Repository) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-00"]
    tool_id = letta_db.facts["custom_tool"]["id"]
    identity_id = _identity_of(letta_db, agent_id)
    team = next(b for b in letta_db.facts["shared_blocks"] if agent_id in b["agent_ids"])
    snapshot = run_backup(repo, letta_db.admin_dsn).snapshot
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        org = _new_org(conn)
        tool_twin = _twin(conn, "tools", tool_id, organization_id=org)
        identity_twin = _twin(conn, "identities", identity_id, organization_id=org)
    graph = collect(SnapshotSource(repo, snapshot), [agent_id])

    with psycopg.connect(letta_db.dsn) as conn:
        live = live_schema(conn)
        same_org = gather(conn, live, graph, Options(mode=Mode.COPY), lock=False, runs=True)
        listed = gather(conn, live, graph, Options(shared=SharedPolicy.OVERWRITE), lock=False, runs=False)
        other_org = gather(conn, live, graph, Options(mode=Mode.COPY, org=org), lock=False, runs=False)

    assert same_org.present == {agent_id} and same_org.active_runs == []
    team_users = set(team["agent_ids"]) - {agent_id}
    tool_users = {a for a in letta_db.facts["custom_tool"]["agent_ids"] if a != agent_id}
    assert set(listed.users["block"][team["id"]]) == team_users
    assert set(listed.users["tool"][tool_id]) == tool_users
    for facts in (same_org, listed):
        assert facts.used_by["block"][team["id"]] == len(team_users)
        assert facts.used_by["tool"][tool_id] == len(tool_users)
    assert same_org.users["block"] == {} and same_org.users["tool"] == {}  # counted, not listed
    assert same_org.orgs["tool"][tool_id] != org and tool_id in same_org.orgs["tool"]
    assert same_org.matches["tool"] == {} and same_org.matches["identity"] == {}  # only themselves
    assert other_org.matches["tool"] == {tool_id: tool_twin}
    assert other_org.matches["identity"] == {identity_id: identity_twin}


def test_a_copy_into_another_org_points_to_its_same_named_tool_and_identity(
    letta_db, repo: Repository
) -> None:
    agent_id = letta_db.facts["agent_ids"]["lb-agent-00"]
    tool_id = letta_db.facts["custom_tool"]["id"]
    identity_id = _identity_of(letta_db, agent_id)
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        org = _new_org(conn)
        tool_twin = _twin(conn, "tools", tool_id, organization_id=org)
        identity_twin = _twin(conn, "identities", identity_id, organization_id=org)

    report = run_agent_restore(
        repo, letta_db.dsn, agent_ids=[agent_id], options=Options(mode=Mode.COPY, org=org)
    )
    decisions = {(d.kind, d.id): d for d in report.entities}
    assert decisions[("tool", tool_id)].action is Action.MATCH
    assert decisions[("tool", tool_id)].target_id == tool_twin
    assert decisions[("identity", identity_id)].action is Action.MATCH
    assert decisions[("identity", identity_id)].target_id == identity_twin
    copy_id = report.agents[0].new_id
    with psycopg.connect(letta_db.admin_dsn) as conn:
        tools = {
            r[0]
            for r in conn.execute("SELECT tool_id FROM letta.tools_agents WHERE agent_id = %s", (copy_id,))
        }
        identities = {
            r[0]
            for r in conn.execute(
                "SELECT identity_id FROM letta.identities_agents WHERE agent_id = %s", (copy_id,)
            )
        }
    assert tool_twin in tools and tool_id not in tools
    assert identity_twin in identities and identity_id not in identities


def test_in_place_a_recreated_tool_is_matched_by_name(letta_db, repo: Repository) -> None:
    """The tool was deleted and created again (new id, same name): the restored agent is attached
    to the live one instead of bringing back a second tool of that name."""
    agent_id = letta_db.facts["agent_ids"]["lb-agent-00"]
    tool = letta_db.facts["custom_tool"]
    run_backup(repo, letta_db.admin_dsn)
    with psycopg.connect(letta_db.admin_dsn) as conn:
        recreated = _twin(conn, "tools", tool["id"], name="lb-renamed")
        conn.execute("DELETE FROM letta.tools_agents WHERE tool_id = %s", (tool["id"],))
        conn.execute("DELETE FROM letta.tools WHERE id = %s", (tool["id"],))
        conn.execute("UPDATE letta.tools SET name = %s WHERE id = %s", (tool["name"], recreated))

    report = run_agent_restore(repo, letta_db.dsn, agent_ids=[agent_id])
    decision = next(d for d in report.entities if d.kind == "tool" and d.id == tool["id"])
    assert decision.action is Action.MATCH and decision.target_id == recreated
    with psycopg.connect(letta_db.admin_dsn) as conn:
        names = conn.execute("SELECT count(*) FROM letta.tools WHERE name = %s", (tool["name"],)).fetchone()
        attached = conn.execute(
            "SELECT count(*) FROM letta.tools_agents WHERE agent_id = %s AND tool_id = %s",
            (agent_id, recreated),
        ).fetchone()
    assert names == (1,) and attached == (1,)
