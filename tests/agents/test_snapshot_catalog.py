"""A manifest read with its agent catalog set aside (ops/snapshot_catalog.py, no database): the
snapshot and every choice of agents are what the whole parse gives, whatever the catalog holds;
a manifest laid out otherwise is parsed whole; damage is refused as before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.letta.catalog import AgentEntry
from lifeboat.ops import snapshot_catalog
from lifeboat.ops import snapshot_layout as layout
from lifeboat.ops.agent_restore.source import choose_agents
from lifeboat.repo.manifest import BlobRef, Snapshot, Stream
from lifeboat.repo.repository import Repository

# Ids and names that JSON escapes or that look like the bytes the reader searches for.
TEXT = st.text(alphabet='ab1-"\\{}[],:é\n', max_size=8)
IDS = st.one_of(st.sampled_from(["agent-1", "agent-12", "agent-2"]), TEXT.map(lambda s: f"agent-{s}"))


def _manifest(
    entries: list[Any] | None, *, extra: dict[str, Any] | None = None, attribute: Any = None
) -> Snapshot:
    """A manifest as the backup writes it (the letta document's keys in LettaDocument's order)."""
    letta: dict[str, Any] = {"letta": True, "revision": "r1"}
    if entries is not None:
        letta["agents"] = entries
    letta["runs_in_flight"] = [{"run_id": "run-1", "agent_id": "agent-1", "status": "running"}]
    stream = Stream(
        name="table:letta.agents",
        attributes={"schema": "letta", "table": "agents", "columns": ["id"], "key": "id", "x": attribute},
        blobs=[BlobRef(id="ab" * 32, size=10, raw_size=20, records=1, zone_min="a", zone_max="b")],
    )
    return Snapshot(
        streams=[stream], documents={"source": {"database": "letta"}, "letta": letta, **(extra or {})}
    )


def _entry(agent_id: str, name: str = "n") -> dict[str, Any]:
    return dataclasses.asdict(AgentEntry(id=agent_id, name=name, tags=["t"], messages=3))


def _light(snapshot: Snapshot) -> snapshot_catalog.LightSnapshot | None:
    return snapshot_catalog._light(snapshot.model_dump_json().encode())


def _outcome(choose: Any) -> tuple[str, Any]:
    try:
        return "ok", [dataclasses.asdict(entry) for entry in choose()]
    except (UsageError, CorruptRepository) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(IDS, max_size=6),
    names=st.lists(TEXT, min_size=6, max_size=6),
    refs=st.lists(st.one_of(IDS, TEXT), max_size=3),
)
def test_the_catalog_set_aside_gives_what_the_whole_parse_gives(
    ids: list[str], names: list[str], refs: list[str]
) -> None:
    whole = _manifest([_entry(agent_id, name) for agent_id, name in zip(ids, names, strict=False)])
    light = _light(whole)
    assert light is not None and light.held_catalog is not None
    assert light.streams == whole.streams and light.id == whole.id
    assert layout.letta_document(light) == layout.letta_document(whole)
    assert layout.catalog_by_id(light) == layout.catalog_by_id(whole)
    assert layout.runs_in_flight(light) == layout.runs_in_flight(whole)
    assert _outcome(lambda: choose_agents(light, refs)) == _outcome(lambda: choose_agents(whole, refs))
    for name in names[:2]:
        assert _outcome(lambda n=name: choose_agents(light, [], name=n)) == _outcome(
            lambda n=name: choose_agents(whole, [], name=n)
        )


@pytest.mark.parametrize(
    ("snapshot", "set_aside"),
    [
        (_manifest(None), False),  # no catalog
        (_manifest([_entry("agent-1"), {"name": "no id"}]), False),  # an entry without an id
        (_manifest([_entry("agent-1"), "agent-2"]), False),  # not an object
        (_manifest([_entry(snapshot_catalog.PLACEHOLDER)]), False),  # the placeholder is in it
        (_manifest([_entry("agent-1")], extra={"zzz": {"agents": ["x"], "runs_in_flight": []}}), True),
    ],
)
def test_a_manifest_laid_out_otherwise_reads_as_the_whole_parse(snapshot: Snapshot, set_aside: bool) -> None:
    light = _light(snapshot)
    assert (light is not None) == set_aside
    read = light or snapshot
    for refs in (["agent-1"], ["agent-2"], ["agent-9"]):
        assert _outcome(lambda r=refs: choose_agents(read, r)) == _outcome(
            lambda r=refs: choose_agents(snapshot, r)
        )


def test_agents_keys_elsewhere_are_not_taken_for_the_catalog() -> None:
    """An ``"agents":[...]`` before the letta document (here in a stream's attributes) is not cut out."""
    snapshot = _manifest([_entry("agent-1")], attribute={"agents": [1, 2]})
    light = _light(snapshot)
    assert light is None
    assert [entry.id for entry in choose_agents(snapshot, ["agent-1"])] == ["agent-1"]


def test_one_entry_is_found_by_its_bytes_and_validated() -> None:
    odd = _entry("agent-2") | {"messages": "not a number"}
    light = _light(_manifest([_entry("agent-1"), odd, _entry("agent-3")]))
    assert light is not None and light.held_catalog is not None
    assert light.held_catalog.ids == ["agent-1", "agent-2", "agent-3"]
    assert light.held_catalog._find("agent-3") == _entry("agent-3")
    assert [entry.id for entry in choose_agents(light, ["agent-3"])] == ["agent-3"]
    with pytest.raises(CorruptRepository, match="entry of agent agent-2"):
        choose_agents(light, ["agent-2"])


def test_ids_left_unread_are_read_and_checked_when_asked_for() -> None:
    """``read_ids=False`` (an incremental backup's parent) gives the same snapshot; the ids are
    read when asked for, and a catalog that is not an array of objects with string ids raises then
    (where reading them with the manifest would have parsed it whole)."""
    data = _manifest([_entry("agent-1"), _entry("agent-2")]).model_dump_json().encode()
    eager, lazy = snapshot_catalog._light(data), snapshot_catalog._light(data, read_ids=False)
    assert eager is not None and lazy is not None and lazy.model_dump() == eager.model_dump()
    assert lazy.held_catalog is not None and lazy.held_catalog.ids == ["agent-1", "agent-2"]
    bad = data.replace(b'{"id":"agent-2"', b'{"id":2')
    assert snapshot_catalog._light(bad) is None
    unread = snapshot_catalog._light(bad, read_ids=False)
    assert unread is not None and unread.held_catalog is not None
    with pytest.raises(CorruptRepository, match="agent catalog cannot be decoded"):
        unread.held_catalog.ids  # noqa: B018


def test_reading_from_a_repository(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", None, encrypt=False)
    snapshot = _manifest([_entry("agent-1"), _entry("agent-2")])
    repo._write_manifest(snapshot)
    light = snapshot_catalog.read_snapshot(repo, snapshot.id)
    assert layout.held_catalog(light) is not None
    assert json.loads(light.model_dump_json())["documents"]["letta"]["agents"] == snapshot_catalog.PLACEHOLDER
    assert layout.letta_document(light) == layout.letta_document(repo.read_snapshot(snapshot.id))
    assert (
        repo.load_snapshot("latest", read=lambda i: snapshot_catalog.read_snapshot(repo, i)).id == snapshot.id
    )
    (tmp_path / "repo" / "snapshots" / snapshot.id).write_bytes(b"damaged")
    with pytest.raises(CorruptRepository):
        snapshot_catalog.read_snapshot(repo, snapshot.id)


def test_the_newest_is_chosen_from_headers_as_from_whole_manifests(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from lifeboat.ops.snapshot_filter import choose, choose_for_database, snapshot_filter

    repo = Repository.init(tmp_path / "repo", None, encrypt=False)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n, (database, host, tag) in enumerate(
        [
            ("letta", "a", "x"),
            ("other", "a", "y"),
            ("letta", "b", "y"),
            ("letta", "a", "y"),
            ("other", "b", "x"),
        ]
    ):
        snapshot = _manifest([_entry(f"agent-{n}")], extra={"source": {"database": database}})
        repo._write_manifest(
            snapshot.model_copy(update={"time": start + timedelta(days=n), "hostname": host, "tags": [tag]})
        )
    header = snapshot_catalog.read_header(repo, repo.snapshot_ids()[0])
    assert not header.streams and set(header.documents) == {"source"}
    for sources, hosts, tags in [
        ([], [], []),
        (["letta"], [], []),
        (["letta"], ["a"], []),
        (["other"], [], ["x"]),
    ]:
        flt = snapshot_filter(sources=sources, hosts=hosts, tags=tags)
        whole, how = choose(repo, "latest", flt)
        light, chosen = choose_for_database(
            repo, "latest" if not sources else None, "", sources=sources, hosts=hosts, tags=tags
        )
        assert (light.id, chosen) == (whole.id, how)
        assert layout.letta_document(light) == layout.letta_document(whole)
        assert [entry.id for entry in choose_agents(light, [layout.letta_document(whole).agents[0].id])]  # type: ignore[index]
    named, _ = choose_for_database(repo, repo.snapshot_ids()[1][:10], "")
    assert named.id == repo.snapshot_ids()[1] and layout.held_catalog(named) is not None


def test_catalog_ids_are_those_of_an_array_of_objects_with_string_ids() -> None:
    ids = snapshot_catalog.catalog_ids
    assert ids(b'[{"id":"a","x":{"id":"b"}},{"n":1,"id":"c"},{"id":"d","id":"e"}]') == ["a", "c", "e"]
    assert ids(b"[]") == []
    for bad in (
        b'[{"id":"a"},"b"]',
        b'[{"id":1}]',
        b'[{"name":"a"}]',
        b'{"id":"a"}',
        b'[{"id":"a","n":NaN}]',
        b"[",
        b'[{"id":"\xff"}]',
    ):
        assert ids(bad) is None, bad


def test_a_header_is_read_whatever_the_layout(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "repo", None, encrypt=False)
    for snapshot in (_manifest(None), _manifest([_entry("agent-1")]), _manifest([{"id": 1}])):
        repo._write_manifest(snapshot)
        header = snapshot_catalog.read_header(repo, snapshot.id)
        assert (header.id, header.time, header.hostname, header.tags) == (
            snapshot.id,
            snapshot.time,
            snapshot.hostname,
            snapshot.tags,
        )
        assert header.documents == {"source": {"database": "letta"}}
