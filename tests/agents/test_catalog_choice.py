"""Choosing agents by id from a snapshot's catalog without validating all of it (no database).

``choose_agents`` picks entries out of the stored catalog and validates only those; it must choose
exactly what ``select_agents`` over the whole validated catalog chooses, and fail the same way."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.source import catalog, choose_agents, run_warnings, select_agents
from lifeboat.repo.manifest import Snapshot

IDS = st.text(alphabet="ab-1", min_size=1, max_size=4).map(lambda s: f"agent-{s}")


def _snapshot(agents: list[Any] | None, **letta: Any) -> Snapshot:
    document = layout.LettaDocument(letta=True, revision="r1").model_dump(mode="json", exclude_none=True)
    if agents is not None:
        document["agents"] = agents
    return Snapshot(documents={layout.LETTA: document | letta})


def _entry(agent_id: str) -> dict[str, Any]:
    return dataclasses.asdict(AgentEntry(id=agent_id, name=f"n{agent_id}", tags=["t"], messages=3))


def _outcome(choose: Any) -> tuple[str, Any]:
    try:
        return "ok", [dataclasses.asdict(entry) for entry in choose()]
    except UsageError as exc:
        return "usage", str(exc)


@settings(max_examples=200, deadline=None)
@given(
    catalog_ids=st.lists(IDS, max_size=8),
    refs=st.lists(st.one_of(IDS, st.text(alphabet="agent-ab1", max_size=8)), max_size=3),
)
def test_choosing_by_id_or_prefix_equals_selecting_from_the_whole_catalog(
    catalog_ids: list[str], refs: list[str]
) -> None:
    snapshot = _snapshot([_entry(agent_id) for agent_id in catalog_ids])
    lean = _outcome(lambda: choose_agents(snapshot, refs))
    whole = _outcome(lambda: select_agents(catalog(snapshot), refs))
    if lean[0] == "usage" and whole[0] == "usage" and "agents there" in str(whole[1]):
        # the count names distinct ids (a duplicated id is one agent)
        assert lean[1].split(" (")[0] == whole[1].split(" (")[0]
    else:
        assert lean == whole


def test_name_or_tag_selection_reads_the_whole_catalog() -> None:
    snapshot = _snapshot([_entry("agent-1"), _entry("agent-2")])
    chosen = choose_agents(snapshot, [], name="nagent-2")
    assert [entry.id for entry in chosen] == ["agent-2"]


def test_only_the_chosen_entries_are_validated_but_every_entry_needs_a_string_id() -> None:
    odd = _entry("agent-2") | {"messages": "not a number"}
    snapshot = _snapshot([_entry("agent-1"), odd])
    assert [entry.id for entry in choose_agents(snapshot, ["agent-1"])] == ["agent-1"]
    with pytest.raises(CorruptRepository, match="entry of agent agent-2"):
        choose_agents(snapshot, ["agent-2"])
    for damaged in ([_entry("agent-1"), {"name": "no id"}], [_entry("agent-1"), "agent-2"], {"id": "x"}):
        with pytest.raises(CorruptRepository, match="letta document is not valid"):
            choose_agents(_snapshot(damaged), ["agent-1"])  # type: ignore[arg-type]
    with pytest.raises(CorruptRepository, match="letta document is not valid"):
        choose_agents(Snapshot(documents={layout.LETTA: ["not an object"]}), ["agent-1"])


def test_a_snapshot_without_a_catalog_has_no_agent() -> None:
    for snapshot in (_snapshot(None), Snapshot()):
        with pytest.raises(UsageError, match=r"not in the snapshot \(0 agents there\)"):
            choose_agents(snapshot, ["agent-1"])


def test_runs_in_flight_are_read_without_the_catalog() -> None:
    run = {"run_id": "run-1", "agent_id": "agent-1", "status": "running"}
    snapshot = _snapshot([{"id": "agent-9", "messages": "unread"}], runs_in_flight=[run])
    assert [r.run_id for r in layout.runs_in_flight(snapshot)] == ["run-1"]
    assert layout.runs_in_flight(Snapshot()) == []
    with pytest.raises(CorruptRepository, match="runs_in_flight"):
        layout.runs_in_flight(_snapshot([], runs_in_flight=[{"run_id": 1}]))


def test_run_warnings_name_the_restored_agents_runs() -> None:
    from lifeboat.letta.subgraph import Subgraph

    run = {"run_id": "run-1", "agent_id": "agent-1", "status": "running"}
    snapshot = _snapshot([_entry("agent-1")], runs_in_flight=[run])
    graph = Subgraph(requested=["agent-1"], agent_ids={"agent-1"})
    assert "run-1 running" in run_warnings(snapshot, graph)[0]
