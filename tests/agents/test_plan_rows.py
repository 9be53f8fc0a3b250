"""Row selection and id rewriting of the agent-restore plan, without a database: which snapshot rows
each table gets after the decisions, how a copy rewrites ids, organization and names, and which
live rows an in-place restore replaces."""

from __future__ import annotations

from lifeboat.letta.subgraph import Subgraph, TableRows, copy_escape, spec_for
from lifeboat.ops.agent_restore.facts import LiveFacts
from lifeboat.ops.agent_restore.plan import Decisions, Scope, decide, rows_to_write, scope_for
from lifeboat.ops.agent_restore.report import Action, Mode, Options

MAIN = "agent-11111111-1111-4111-8111-111111111111"
OUTSIDER = "agent-22222222-2222-4222-8222-222222222222"
OWN_BLOCK = "block-55555555-5555-4555-8555-555555555555"
TEAM_BLOCK = "block-66666666-6666-4666-8666-666666666666"
HISTORY = "block_history-77777777-7777-4777-8777-777777777777"
TEAM_HISTORY = "block_history-88888888-8888-4888-8888-888888888888"
GROUP = "group-44444444-4444-4444-8444-444444444444"
MESSAGE = "message-99999999-9999-4999-8999-999999999999"
ORG = "org-00000000-0000-4000-8000-000000000001"
OTHER_ORG = "org-00000000-0000-4000-8000-000000000002"


def _rows(table: str, columns: list[str], *records: tuple[str | None, ...]) -> TableRows:
    lines = [b"\t".join(copy_escape(v) for v in record) + b"\n" for record in records]
    return TableRows(table, columns, lines)


def _graph() -> Subgraph:
    graph = Subgraph(requested=[MAIN], agent_ids={MAIN})
    for rows in (
        _rows("agents", ["id", "name", "organization_id"], (MAIN, "main", ORG)),
        _rows("messages", ["id", "agent_id", "organization_id"], (MESSAGE, MAIN, ORG)),
        _rows("blocks_agents", ["agent_id", "block_id"], (MAIN, OWN_BLOCK), (MAIN, TEAM_BLOCK)),
        _rows(
            "block",
            ["id", "label", "organization_id"],
            (OWN_BLOCK, "human", ORG),
            (TEAM_BLOCK, "team", ORG),
        ),
        _rows("block_history", ["id", "block_id"], (HISTORY, OWN_BLOCK), (TEAM_HISTORY, TEAM_BLOCK)),
        _rows("groups_agents", ["group_id", "agent_id"], (GROUP, MAIN)),
        _rows("groups", ["id", "manager_type"], (GROUP, "round_robin")),
    ):
        graph.tables[rows.table] = rows
    graph.entities["block"] = {OWN_BLOCK, TEAM_BLOCK}
    graph.entities["group"] = {GROUP}  # it belongs to the group, does not manage it
    return graph


def _facts() -> LiveFacts:
    """Both blocks and the group exist live; the team block and the group have another member."""
    return LiveFacts(
        tables=frozenset(
            {"agents", "messages", "blocks_agents", "block", "block_history", "groups", "groups_agents"}
        ),
        present={MAIN},
        orgs={"block": {OWN_BLOCK: ORG, TEAM_BLOCK: ORG}, "group": {GROUP: None}},
        used_by={"block": {TEAM_BLOCK: 1}, "group": {GROUP: 1}},
        users={"block": {TEAM_BLOCK: [OUTSIDER]}, "group": {GROUP: [OUTSIDER]}},
        matches={"block": {}, "group": {}},
    )


def _records(rows: TableRows) -> list[dict[str, str | None]]:
    return list(rows.records())


def _plan(options: Options) -> tuple[Decisions, dict[str, TableRows]]:
    graph = _graph()
    decisions = decide(graph, _facts(), options)
    return decisions, rows_to_write(graph, decisions, options)


def test_a_copy_rewrites_ids_organization_and_name() -> None:
    options = Options(mode=Mode.COPY, org=OTHER_ORG, suffix=" [b]")
    decisions, rows = _plan(options)
    assert decisions.by_kind["block"][TEAM_BLOCK].action is Action.COPY  # not shared across orgs
    new_main, new_own = decisions.agent_ids[MAIN], decisions.remap.get(OWN_BLOCK)
    assert new_main != MAIN and new_own != OWN_BLOCK

    assert _records(rows["agents"]) == [{"id": new_main, "name": "main [b]", "organization_id": OTHER_ORG}]
    [message] = _records(rows["messages"])
    assert (
        message["id"] != MESSAGE
        and message["agent_id"] == new_main
        and message["organization_id"] == OTHER_ORG
    )
    links = {r["block_id"] for r in _records(rows["blocks_agents"])}
    assert links == {new_own, decisions.remap.get(TEAM_BLOCK)}
    history = {r["block_id"]: r["id"] for r in _records(rows["block_history"])}
    assert set(history) == links and HISTORY not in history.values()
    assert _records(rows["groups_agents"]) == []  # a copy does not join a group it does not manage
    assert _records(rows["groups"]) == []


def test_a_copy_in_the_same_org_reuses_the_shared_block_as_it_is() -> None:
    decisions, rows = _plan(Options(mode=Mode.COPY))
    assert decisions.by_kind["block"][TEAM_BLOCK].action is Action.REUSE
    assert decisions.by_kind["block"][OWN_BLOCK].action is Action.COPY
    new_own = decisions.remap.get(OWN_BLOCK)
    assert {r["block_id"] for r in _records(rows["blocks_agents"])} == {new_own, TEAM_BLOCK}
    assert [r["id"] for r in _records(rows["block"])] == [new_own]
    assert [r["block_id"] for r in _records(rows["block_history"])] == [new_own]
    assert _records(rows["agents"])[0]["name"] == "main (restored)"
    graph = _graph()
    assert scope_for(spec_for("messages"), graph, decisions, Options(mode=Mode.COPY)) is None


def test_in_place_keeps_ids_and_replaces_only_the_restored_scope() -> None:
    options = Options()
    decisions, rows = _plan(options)
    assert decisions.by_kind["block"][OWN_BLOCK].action is Action.OVERWRITE
    assert decisions.by_kind["block"][TEAM_BLOCK].action is Action.KEEP
    assert decisions.by_kind["group"][GROUP].action is Action.KEEP
    assert rows["messages"].lines == _graph().tables["messages"].lines  # untouched
    assert [r["id"] for r in _records(rows["block"])] == [OWN_BLOCK]
    assert [r["id"] for r in _records(rows["block_history"])] == [HISTORY]
    assert len(rows["groups_agents"]) == 1  # membership is the agent's own row

    graph = _graph()
    assert scope_for(spec_for("messages"), graph, decisions, options) == Scope("agent_id", [MAIN])
    assert scope_for(spec_for("block"), graph, decisions, options) is None  # upserted, never deleted
    assert scope_for(spec_for("block_history"), graph, decisions, options) == Scope("block_id", [OWN_BLOCK])
    assert scope_for(spec_for("file_contents"), graph, decisions, options) == Scope(
        "file_id", [], ("files", "source_id")
    )
