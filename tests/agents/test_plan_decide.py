"""The agent-restore decision table, without a database: :func:`decide` on a hand-made subgraph and
hand-made live facts, for every mode × shared policy × live state of an entity (missing, exists
unshared, exists shared with agents outside the restore, exists in another organization, or
missing by id with a natural-key clash)."""

from __future__ import annotations

import pytest

from lifeboat.letta.subgraph import ENTITIES, Subgraph, TableRows, copy_escape, id_uuid
from lifeboat.ops.agent_restore.facts import LiveFacts
from lifeboat.ops.agent_restore.plan import decide
from lifeboat.ops.agent_restore.report import Action, Mode, Options, SharedPolicy

AGENT = "agent-11111111-1111-4111-8111-111111111111"
OUTSIDER = "agent-22222222-2222-4222-8222-222222222222"
ORG = "org-00000000-0000-4000-8000-000000000001"
OTHER_ORG = "org-00000000-0000-4000-8000-000000000002"
LIVE_TWIN = "{prefix}-99999999-9999-4999-8999-999999999999"  # a live row with the same natural key

ENTITY_IDS = {
    "block": "block-55555555-5555-4555-8555-555555555555",
    "archive": "archive-77777777-7777-4777-8777-777777777777",
    "tool": "tool-66666666-6666-4666-8666-666666666666",
    "source": "source-88888888-8888-4888-8888-888888888888",
    "identity": "identity-aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    "group": "group-44444444-4444-4444-8444-444444444444",
}

IN_PLACE, COPY = Mode.IN_PLACE, Mode.COPY
MISSING, OVERWRITE, SHARED_COPY = SharedPolicy.MISSING, SharedPolicy.OVERWRITE, SharedPolicy.COPY

# live states of the entity
ABSENT = "missing"  # no live row with its id
CLASH = "natural-key clash"  # no live row with its id, but one with its natural key
OWN = "exists, unshared"  # live in the same organization, used by no agent outside the restore
SHARED = "exists, shared"  # live in the same organization, used by an agent outside the restore
ELSEWHERE = "exists in another org"  # live with its id, but in another organization


def _graph(kind: str, *, managed: bool = True) -> Subgraph:
    entity = ENTITIES[kind]
    columns = list(dict.fromkeys(["id", "organization_id", entity.label, *entity.named]))
    values = {"id": ENTITY_IDS[kind], "organization_id": ORG, entity.label: f"the {kind}"}
    line = b"\t".join(copy_escape(values.get(c, f"{c} value")) for c in columns) + b"\n"
    graph = Subgraph(requested=[AGENT], agent_ids={AGENT})
    graph.tables["agents"] = TableRows("agents", ["id", "name"], [AGENT.encode() + b"\tmain\n"])
    graph.tables[entity.table] = TableRows(entity.table, columns, [line])
    graph.entities[kind] = {ENTITY_IDS[kind]}
    if kind == "group" and managed:
        graph.managed_groups = {ENTITY_IDS[kind]}
    return graph


def _facts(kind: str, state: str) -> LiveFacts:
    entity_id = ENTITY_IDS[kind]
    facts = LiveFacts(tables=frozenset(e.table for e in ENTITIES.values()) | {"agents"})
    facts.orgs = {kind: {}}
    facts.users = {kind: {}}
    facts.used_by = {kind: {}}
    facts.matches = {kind: {}}
    if state in (OWN, SHARED):
        facts.orgs[kind][entity_id] = ORG
    if state == ELSEWHERE:
        facts.orgs[kind][entity_id] = OTHER_ORG
    if state == SHARED:
        facts.used_by[kind][entity_id] = 1  # counted by the database (distinct agents)
        facts.users[kind][entity_id] = [OUTSIDER, OUTSIDER]  # listed for --shared overwrite, shown once
    if state == CLASH and ENTITIES[kind].named:
        facts.matches[kind][entity_id] = LIVE_TWIN.format(prefix=kind)
    return facts


# (mode, shared policy, entity kind, live state, into another organization) -> action
TABLE: list[tuple[Mode, SharedPolicy, str, str, bool, Action]] = []


def _rows(
    modes: list[Mode],
    policies: list[SharedPolicy],
    kinds: list[str],
    state: str,
    action: Action,
    *,
    other_org: bool = False,
) -> None:
    for mode in modes:
        for policy in policies:
            for kind in kinds:
                TABLE.append((mode, policy, kind, state, other_org, action))


EXCLUSIVE = ["block", "archive", "group"]  # an agent's own unless other agents use them
ORG_OBJECTS = ["tool", "source", "identity"]  # organization objects with a natural key
BOTH = [MISSING, OVERWRITE]
ALL = [MISSING, OVERWRITE, SHARED_COPY]

# in place: ids kept; shared rows left alone unless --shared overwrite
_rows([IN_PLACE], BOTH, EXCLUSIVE + ORG_OBJECTS, ABSENT, Action.INSERT)
_rows([IN_PLACE], BOTH, EXCLUSIVE, CLASH, Action.INSERT)  # no natural key: nothing to match
_rows([IN_PLACE], BOTH, ORG_OBJECTS, CLASH, Action.MATCH)
_rows([IN_PLACE], BOTH, EXCLUSIVE, OWN, Action.OVERWRITE)
_rows([IN_PLACE], [MISSING], ORG_OBJECTS, OWN, Action.KEEP)  # never exclusive to one agent
_rows([IN_PLACE], [OVERWRITE], ORG_OBJECTS, OWN, Action.OVERWRITE)
_rows([IN_PLACE], [MISSING], EXCLUSIVE + ORG_OBJECTS, SHARED, Action.KEEP)
_rows([IN_PLACE], [OVERWRITE], EXCLUSIVE + ORG_OBJECTS, SHARED, Action.OVERWRITE)
_rows([IN_PLACE], BOTH, EXCLUSIVE, ELSEWHERE, Action.OVERWRITE)
_rows([IN_PLACE], [MISSING], ORG_OBJECTS, ELSEWHERE, Action.KEEP)
_rows([IN_PLACE], [OVERWRITE], ORG_OBJECTS, ELSEWHERE, Action.OVERWRITE)
# copy: new ids for what the copy owns; shared blocks/archives reused unless copied/overwritten
_rows([COPY], ALL, EXCLUSIVE, ABSENT, Action.COPY)
_rows([COPY], ALL, EXCLUSIVE, CLASH, Action.COPY)
_rows([COPY], ALL, EXCLUSIVE, OWN, Action.COPY)
_rows([COPY], [MISSING], EXCLUSIVE, SHARED, Action.REUSE)
_rows([COPY], [OVERWRITE], EXCLUSIVE, SHARED, Action.OVERWRITE)
_rows([COPY], [SHARED_COPY], EXCLUSIVE, SHARED, Action.COPY)
_rows([COPY], ALL, EXCLUSIVE, SHARED, Action.COPY, other_org=True)  # the live one is in the source org
_rows([COPY], ALL, EXCLUSIVE, ELSEWHERE, Action.COPY)
_rows([COPY], ALL, ORG_OBJECTS, ABSENT, Action.INSERT)
_rows([COPY], ALL, ORG_OBJECTS, ABSENT, Action.COPY, other_org=True)
_rows([COPY], ALL, ORG_OBJECTS, CLASH, Action.MATCH)
_rows([COPY], ALL, ORG_OBJECTS, CLASH, Action.MATCH, other_org=True)
_rows([COPY], [MISSING, SHARED_COPY], ORG_OBJECTS, OWN, Action.REUSE)
_rows([COPY], [OVERWRITE], ORG_OBJECTS, OWN, Action.OVERWRITE)
_rows([COPY], [MISSING, SHARED_COPY], ORG_OBJECTS, SHARED, Action.REUSE)
_rows([COPY], [OVERWRITE], ORG_OBJECTS, SHARED, Action.OVERWRITE)
_rows([COPY], ALL, ORG_OBJECTS, OWN, Action.COPY, other_org=True)  # its id is taken in the source org
_rows([COPY], ALL, ORG_OBJECTS, ELSEWHERE, Action.COPY)


@pytest.mark.parametrize(
    ("mode", "policy", "kind", "state", "other_org", "expected"),
    TABLE,
    ids=[f"{m}-{p}-{k}-{s}{'-other-org' if o else ''}".replace(" ", "_") for m, p, k, s, o, _ in TABLE],
)
def test_decision_table(
    mode: Mode, policy: SharedPolicy, kind: str, state: str, other_org: bool, expected: Action
) -> None:
    options = Options(mode=mode, shared=policy, org=OTHER_ORG if other_org else None)
    facts = _facts(kind, state)
    if other_org and state == CLASH:  # the clash is looked up in the target organization
        facts.orgs[kind] = {}
    decisions = decide(_graph(kind), facts, options)
    decision = decisions.by_kind[kind][ENTITY_IDS[kind]]
    assert decision.action is expected
    assert decision.label == f"the {kind}"
    assert decision.used_by == (1 if state == SHARED else 0)
    overwritten_shared = expected is Action.OVERWRITE and state == SHARED
    assert decision.affects == ([OUTSIDER] if overwritten_shared else [])


def test_every_mode_policy_kind_and_state_is_in_the_table() -> None:
    seen = {(m, p, k, s) for m, p, k, s, _o, _a in TABLE}
    for kind in ENTITY_IDS:
        for state in (ABSENT, CLASH, OWN, SHARED):
            for policy in BOTH:
                assert (IN_PLACE, policy, kind, state) in seen
            for policy in ALL:
                assert (COPY, policy, kind, state) in seen


def test_a_copy_skips_groups_it_does_not_manage() -> None:
    for policy in ALL:
        decisions = decide(
            _graph("group", managed=False), _facts("group", OWN), Options(mode=COPY, shared=policy)
        )
        assert decisions.by_kind["group"][ENTITY_IDS["group"]].action is Action.SKIP


def test_copies_get_new_ids_and_matches_point_to_the_live_row() -> None:
    decisions = decide(_graph("block"), _facts("block", ABSENT), Options(mode=COPY))
    block = decisions.by_kind["block"][ENTITY_IDS["block"]]
    assert block.target_id is not None and block.target_id.startswith("block-")
    assert block.target_id != block.id and id_uuid(block.target_id) is not None
    assert decisions.remap.get(block.id) == block.target_id
    assert decisions.agent_ids[AGENT] != AGENT and decisions.remap.get(AGENT) == decisions.agent_ids[AGENT]

    twin = LIVE_TWIN.format(prefix="tool")
    decisions = decide(_graph("tool"), _facts("tool", CLASH), Options())
    assert decisions.by_kind["tool"][ENTITY_IDS["tool"]].target_id == twin
    assert decisions.remap.get(ENTITY_IDS["tool"]) == twin
    assert decisions.agent_ids[AGENT] == AGENT  # in place: ids kept


def test_entities_not_in_the_snapshot_or_without_a_live_table_are_not_decided() -> None:
    graph = _graph("block")
    graph.entities["block"].add("block-00000000-0000-4000-8000-00000000dead")  # referenced, not stored
    decisions = decide(graph, _facts("block", ABSENT), Options())
    assert list(decisions.by_kind["block"]) == [ENTITY_IDS["block"]]
    facts = _facts("block", ABSENT)
    facts.tables = frozenset({"agents"})
    assert decide(graph, facts, Options()).by_kind == {}
