"""The subgraph definition and collector on hand-made rows (no database): what "one agent" pulls
in, the group closure, COPY field handling, id rewriting and apply order."""

from __future__ import annotations

import json

import pytest

from lifeboat.errors import LifeboatError, UsageError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.letta.schema_shape import ForeignKey
from lifeboat.letta.subgraph import (
    IdRemap,
    TableRows,
    collect,
    copy_escape,
    copy_field,
    id_uuid,
)
from lifeboat.ops.agent_restore.plan import apply_order
from lifeboat.ops.agent_restore.source import select_agents

MAIN = "agent-11111111-1111-4111-8111-111111111111"
SIBLING = "agent-22222222-2222-4222-8222-222222222222"
OTHER = "agent-33333333-3333-4333-8333-333333333333"
GROUP = "group-44444444-4444-4444-8444-444444444444"
OWN_BLOCK = "block-55555555-5555-4555-8555-555555555555"
TEAM_BLOCK = "block-66666666-6666-4666-8666-666666666666"
ARCHIVE = "archive-77777777-7777-4777-8777-777777777777"
SOURCE = "source-88888888-8888-4888-8888-888888888888"
FILE = "file-99999999-9999-4999-8999-999999999999"
IDENTITY = "identity-aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def _rows(table: str, columns: list[str], *records: tuple[object, ...]) -> TableRows:
    lines = [
        b"\t".join(copy_escape(None if v is None else str(v)) for v in record) + b"\n" for record in records
    ]
    return TableRows(table, columns, lines)


DATABASE = {
    "agents": _rows("agents", ["id", "name"], (MAIN, "main"), (SIBLING, "main-sleeptime"), (OTHER, "other")),
    "groups": _rows(
        "groups",
        ["id", "manager_agent_id", "agent_ids"],
        (GROUP, MAIN, json.dumps([SIBLING])),
    ),
    "groups_agents": _rows("groups_agents", ["group_id", "agent_id"], (GROUP, SIBLING)),
    "blocks_agents": _rows(
        "blocks_agents",
        ["agent_id", "block_id", "block_label"],
        (MAIN, OWN_BLOCK, "human"),
        (MAIN, TEAM_BLOCK, "team"),
        (SIBLING, OWN_BLOCK, "human"),
        (OTHER, TEAM_BLOCK, "team"),
    ),
    "block": _rows(
        "block",
        ["id", "label", "value"],
        (OWN_BLOCK, "human", "likes\ttea\nand cake"),
        (TEAM_BLOCK, "team", "x"),
    ),
    "identities_blocks": _rows("identities_blocks", ["identity_id", "block_id"], (IDENTITY, OWN_BLOCK)),
    "identities": _rows("identities", ["id", "identifier_key"], (IDENTITY, "user-1")),
    "archives_agents": _rows("archives_agents", ["agent_id", "archive_id"], (MAIN, ARCHIVE)),
    "archives": _rows("archives", ["id", "name"], (ARCHIVE, "main's Archive")),
    "archival_passages": _rows(
        "archival_passages",
        ["id", "archive_id", "text"],
        ("passage-1", ARCHIVE, "fact"),
        ("passage-2", "x", "no"),
    ),
    "sources_agents": _rows("sources_agents", ["agent_id", "source_id"], (OTHER, SOURCE)),
    "files_agents": _rows(
        "files_agents", ["id", "agent_id", "file_id", "source_id"], ("fa-1", MAIN, FILE, SOURCE)
    ),
    "sources": _rows("sources", ["id", "name"], (SOURCE, "handbook")),
    "files": _rows("files", ["id", "source_id"], (FILE, SOURCE)),
    "file_contents": _rows("file_contents", ["id", "file_id", "text"], ("fc-1", FILE, "text")),
    "messages": _rows(
        "messages", ["id", "agent_id", "sequence_id"], ("message-1", MAIN, 1), ("message-2", OTHER, 2)
    ),
}


class Source:
    """A RowSource over DATABASE that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, set[str] | None]] = []

    def __call__(self, table: str, key: str, keys: set[str] | None) -> TableRows | None:
        self.asked.append((table, key, keys))
        rows = DATABASE.get(table)
        if rows is None:
            return None
        return rows if keys is None else rows.where_in(key, keys)


def test_collect_pulls_the_sleeptime_sibling_and_every_entity() -> None:
    source = Source()
    graph = collect(source, [MAIN])
    assert graph.agent_ids == {MAIN, SIBLING}
    assert graph.requested == [MAIN]
    assert graph.managed_groups == {GROUP}
    assert graph.entities["block"] == {OWN_BLOCK, TEAM_BLOCK}
    assert graph.entities["archive"] == {ARCHIVE}
    assert graph.entities["source"] == {SOURCE}  # through files_agents, though not attached as a folder
    assert graph.entities["identity"] == {IDENTITY}  # through identities_blocks
    assert graph.ids("messages") == {"message-1"}
    assert graph.ids("archival_passages") == {"passage-1"}
    assert graph.ids("file_contents") == {"fc-1"}
    assert {r["agent_id"] for r in graph.tables["blocks_agents"].records()} == {MAIN, SIBLING}
    # agent-keyed tables are asked by agent id, not read whole
    messages = [keys for table, key, keys in source.asked if table == "messages"]
    assert messages == [{MAIN, SIBLING}]


def test_collect_of_a_sibling_alone_treats_its_group_as_shared() -> None:
    graph = collect(Source(), [SIBLING])
    assert graph.agent_ids == {SIBLING}
    assert graph.managed_groups == set()
    assert graph.entities["group"] == {GROUP}


def test_copy_fields_round_trip() -> None:
    for text in ["plain", "tab\there", "new\nline", "back\\slash", "", "ünï\r\n"]:
        assert copy_field(copy_escape(text)) == text
    assert copy_field(b"\\N") is None
    assert DATABASE["block"].values("value")[0] == "likes\ttea\nand cake"


def test_id_remap_rewrites_every_reference_in_a_line() -> None:
    remap = IdRemap()
    new_main = remap.renew(MAIN)
    assert new_main.startswith("agent-") and new_main != MAIN
    assert remap.renew(MAIN) == new_main  # stable
    remap.point(TEAM_BLOCK, OWN_BLOCK)
    line = f'{MAIN}\t["{MAIN}", "{OTHER}"]\t{TEAM_BLOCK}\n'.encode()
    assert remap.line(line) == f'{new_main}\t["{new_main}", "{OTHER}"]\t{OWN_BLOCK}\n'.encode()
    # run_metrics share their run's id: the same uuid maps to the same new uuid under any prefix
    run = "run-bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
    assert (
        remap.renew(run).split("-", 1)[1]
        == remap.get("step-bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb").split("-", 1)[1]
    )
    assert id_uuid("not-an-id") is None
    with pytest.raises(ValueError):
        remap.renew("no uuid")


def test_apply_order_puts_parents_first_and_breaks_the_block_history_cycle() -> None:
    fks = [
        ForeignKey("a", "messages", ("agent_id",), "agents", ("id",), "c"),
        ForeignKey("b", "messages", ("step_id",), "steps", ("id",), "n"),
        ForeignKey("c", "block", ("current_history_entry_id",), "block_history", ("id",), "a"),
        ForeignKey("d", "block_history", ("block_id",), "block", ("id",), "c"),
        ForeignKey("e", "blocks_agents", ("block_id", "block_label"), "block", ("id", "label"), "c", True),
    ]
    order = apply_order(["blocks_agents", "messages", "block_history", "steps", "agents", "block"], fks)
    assert order.index("agents") < order.index("messages")
    assert order.index("steps") < order.index("messages")
    assert order.index("block") < order.index("block_history") < len(order)
    assert order.index("block") < order.index("blocks_agents")
    with pytest.raises(LifeboatError):
        apply_order(
            ["x", "y"],
            [
                ForeignKey("f", "x", ("y",), "y", ("id",), "a"),
                ForeignKey("g", "y", ("x",), "x", ("id",), "a"),
            ],
        )


def test_select_agents_by_id_name_and_tag() -> None:
    entries = [
        AgentEntry(id=MAIN, name="support-1", tags=["prod"]),
        AgentEntry(id=OTHER, name="support-2", tags=["dev"]),
        AgentEntry(id=SIBLING, name="sales", tags=["prod"]),
    ]
    assert [e.id for e in select_agents(entries, [OTHER])] == [OTHER]
    assert [e.id for e in select_agents(entries, name="support-*")] == [MAIN, OTHER]
    assert [e.id for e in select_agents(entries, name="support-*", tag="prod")] == [MAIN]
    assert [e.id for e in select_agents(entries, [SIBLING], tag="prod")] == [SIBLING, MAIN]
    with pytest.raises(UsageError, match="not in the snapshot"):
        select_agents(entries, ["agent-nope"])
    with pytest.raises(UsageError, match="no agent"):
        select_agents(entries, name="nobody*")
