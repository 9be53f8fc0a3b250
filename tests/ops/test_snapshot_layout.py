"""ops/snapshot_layout.py without a database: documents round-trip, damaged ones are refused."""

from __future__ import annotations

import pytest

from lifeboat.errors import CorruptRepository
from lifeboat.letta.catalog import AgentEntry
from lifeboat.ops import snapshot_layout as layout
from lifeboat.pg.models import ColumnDef, DatabaseInfo, DatabaseSchema, TableDef
from lifeboat.repo.manifest import BlobRef, Snapshot, Stream

SCHEMA = DatabaseSchema(
    server_version_num=150008,
    database=DatabaseInfo(name="letta", owner="letta", encoding="UTF8", collate="C", ctype="C"),
)


def _snapshot(**documents: object) -> Snapshot:
    attributes = layout.TableStream(schema="letta", table="runs", columns=["id", "agent_id"], key="agent_id")
    streams = [
        Stream(
            name=layout.table_stream_name("letta", "runs"),
            attributes=attributes.model_dump(by_alias=True),
            blobs=[BlobRef(id="ab" * 32, size=10, raw_size=20, records=1, zone_min="a", zone_max="b")],
        ),
        Stream(name="something-else", attributes={"x": 1}),
    ]
    return Snapshot(streams=streams, documents=documents)


def test_documents_round_trip() -> None:
    letta = layout.LettaDocument(
        letta=True,
        revision="1c28e167b74f",
        release="0.16.7–0.16.8",
        agents=[AgentEntry(id="agent-1", name="a", tags=["x"], messages=3)],
        runs_in_flight=[layout.RunInFlight(run_id="run-1", agent_id="agent-1", status="running")],
    )
    source = layout.SourceDocument(database="letta", server_version="15.8", letta_schema="letta")
    snapshot = _snapshot(**layout.documents(source, letta, SCHEMA, {"data": 1.5}))
    assert "letta_revision" not in snapshot.documents[layout.SOURCE]  # absent, not null
    assert layout.source_document(snapshot) == source
    assert layout.letta_document(snapshot) == letta
    assert layout.schema_document(snapshot) == SCHEMA
    assert layout.timings_document(snapshot) == {"data": 1.5}
    ((key, (stream, attributes)),) = layout.table_streams(snapshot).items()
    assert key == ("letta", "runs") and stream.name == "table:letta.runs"
    assert attributes.columns == ["id", "agent_id"] and attributes.key == "agent_id"


def test_missing_documents_read_as_empty_but_a_restore_needs_the_schema() -> None:
    snapshot = _snapshot()
    assert layout.letta_document(snapshot).letta is False
    assert layout.letta_document(snapshot).agents is None
    assert layout.source_document(snapshot).database is None
    with pytest.raises(CorruptRepository, match="no schema document"):
        layout.schema_document(snapshot)


@pytest.mark.parametrize(
    ("documents", "read"),
    [
        ({"letta": {"letta": True, "agents": [{"name": "no id"}]}}, layout.letta_document),
        ({"letta": {"runs_in_flight": "many"}}, layout.letta_document),
        ({"source": {"server_version_num": "fifteen"}}, layout.source_document),
        ({"schema": {"tables": []}}, layout.schema_document),
        ({"timings": [1, 2]}, layout.timings_document),
    ],
)
def test_a_document_that_does_not_validate_is_a_damaged_repository(documents: dict, read: object) -> None:
    with pytest.raises(CorruptRepository):
        read(_snapshot(**documents))  # type: ignore[operator]


def test_table_stream_attributes_must_name_the_table() -> None:
    snapshot = Snapshot(streams=[Stream(name="table:letta.x", attributes={"columns": ["id"]})])
    with pytest.raises(CorruptRepository, match=r"attributes of stream table:letta\.x"):
        layout.table_streams(snapshot)


def _table(*types: str) -> TableDef:
    columns = [ColumnDef(name=f"c{n}", type=t) for n, t in enumerate(types)]
    return TableDef(schema="letta", name="t", owner="letta", columns=columns)


def test_binary_only_for_vector_tables_whose_types_print_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    passages = _table(
        "character varying", "json", "letta.vector(4096)", "timestamp with time zone", "boolean"
    )
    chosen = layout.table_encoding(passages, [], utc_iso_session=True)
    assert chosen == {"encoding": "copy-binary", "types": [c.type for c in passages.columns]}
    assert layout.table_encoding(_table("character varying", "json"), [], utc_iso_session=True) == {}
    assert layout.table_encoding(passages, [], utc_iso_session=False) == {}  # times would print otherwise
    assert layout.table_encoding(_table("letta.vector(3)", "numeric"), [], utc_iso_session=True) == {}
    assert layout.table_encoding(
        _table("letta.vector(3)", "letta.kind"), ["letta.kind"], utc_iso_session=True
    )
    monkeypatch.setenv("LIFEBOAT_COPY_BINARY", "0")
    assert layout.table_encoding(passages, [], utc_iso_session=True) == {}


def test_unknown_encoding_or_missing_types_are_refused() -> None:
    snapshot = _snapshot()
    stream = snapshot.streams[0]
    for bad in ({"encoding": "copy-arrow"}, {"encoding": "copy-binary", "types": ["text"]}):
        damaged = stream.model_copy(update={"attributes": {**stream.attributes, **bad}})
        with pytest.raises(CorruptRepository, match=r"encoding|one type per column"):
            layout.table_stream(damaged)
    assert not layout.table_stream(stream).binary  # absent: COPY TEXT, as every older snapshot
