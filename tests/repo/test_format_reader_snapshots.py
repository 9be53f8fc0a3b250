"""The independent reader, extended by docs/FORMAT.md §16 only: it reads a real backup of the real
Letta deployment — tables, rows, one agent through the zone maps, and every document — and checks
what it read against the database itself (no lifeboat code reads anything here)."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK
from test_format_reader import FormatReader

from lifeboat.ops.backup import run_backup  # only to write the sample snapshot
from lifeboat.repo import Repository
from lifeboat.sandbox.deployment import LettaDatabase

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)


def decode_field(field: bytes) -> str | None:
    """§16.1: ``\\N`` alone is NULL; backslash escapes for control characters, octal and hex bytes."""
    if field == b"\\N":
        return None

    def unescape(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1].isdigit() and code[:1] in b"01234567":
            return bytes([int(code, 8) & 0xFF])
        return _ESCAPES.get(code.decode("latin-1"), code.decode("latin-1")).encode("latin-1")

    return _ESCAPE.sub(unescape, field).decode("utf-8")


def decode_rows(records: list[bytes], columns: list[str]) -> list[dict[str, str | None]]:
    """§16.1: one row per record, fields in ``columns`` order, separated by TAB."""
    rows = []
    for record in records:
        fields = record[:-1].split(b"\t")
        assert len(fields) == len(columns)
        rows.append({column: decode_field(field) for column, field in zip(columns, fields, strict=True)})
    return rows


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def split_tuples(data: bytes, width: int) -> list[list[bytes | None]]:
    """§16.1 binary records: int16 field count, then per field an int32 length (-1: NULL) and the bytes."""
    rows, position = [], 0
    while position < len(data):
        (count,) = struct.unpack_from(">h", data, position)
        assert count == width
        position += 2
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, position)
            position += 4
            fields.append(None if length == -1 else data[position : position + length])
            position += max(length, 0)
        rows.append(fields)
    assert position == len(data)
    return rows


def decode_binary(value: bytes | None, type_name: str) -> Any:
    """§16.1's table of binary values, for the types Letta's passage tables use."""
    if value is None:
        return None
    base = type_name.split("(")[0].rsplit(".", 1)[-1]
    if base == "boolean":
        return value == b"\x01"
    if base == "timestamp with time zone":
        return _EPOCH + timedelta(microseconds=struct.unpack(">q", value)[0])
    if base == "vector":
        dim, unused = struct.unpack_from(">hh", value)
        assert unused == 0 and len(value) == 4 + 4 * dim
        return list(struct.unpack_from(f">{dim}f", value, 4))
    assert base in ("character varying", "text", "json"), type_name
    return value.decode("utf-8")


class DatabaseSnapshot:
    """§16 on top of the §1–§15 reader."""

    def __init__(self, reader: FormatReader) -> None:
        self.reader = reader
        self.index = reader.index()
        (self.manifest,) = reader.snapshots()
        self.documents: dict[str, Any] = self.manifest["documents"]
        self.tables = {
            (s["attributes"]["schema"], s["attributes"]["table"]): s
            for s in self.manifest["streams"]
            if s["name"].startswith("table:")
        }

    def rows(self, schema: str, table: str) -> list[dict[str, str | None]]:
        stream = self.tables[(schema, table)]
        assert stream["attributes"].get("encoding") is None
        return decode_rows(self.reader.records(stream, self.index), stream["attributes"]["columns"])

    def binary_rows(
        self, schema: str, table: str, key: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """A ``copy-binary`` stream's rows (only the blobs whose zone map may hold ``key``, if given)."""
        stream = self.tables[(schema, table)]
        attributes = stream["attributes"]
        assert attributes["encoding"] == "copy-binary"
        columns, types = attributes["columns"], attributes["types"]
        blobs = [b for b in stream["blobs"] if key is None or b["zone_min"] <= key <= b["zone_max"]]
        rows = []
        for blob in blobs:  # each blob holds whole tuples
            for fields in split_tuples(self.reader.blob(blob["id"], self.index), len(columns)):
                rows.append({c: decode_binary(f, t) for c, f, t in zip(columns, fields, types, strict=True)})
        if key is not None:
            rows = [row for row in rows if row[attributes["key"]] == key]
        return rows, len(blobs)

    def rows_of_key(self, schema: str, table: str, key: str) -> tuple[list[dict[str, str | None]], int]:
        """§16.3 step 4: only the blobs whose zone map may hold ``key``; returns (rows, blobs read)."""
        stream = self.tables[(schema, table)]
        attributes = stream["attributes"]
        blobs = [b for b in stream["blobs"] if b["zone_min"] <= key <= b["zone_max"]]
        data = b"".join(self.reader.blob(b["id"], self.index) for b in blobs)
        records = [line + b"\n" for line in data.split(b"\n")[:-1]]
        rows = decode_rows(records, attributes["columns"])
        return [row for row in rows if row[attributes["key"]] == key], len(blobs)


@pytest.fixture
def snapshot(letta_db: LettaDatabase, tmp_path: Path) -> DatabaseSnapshot:
    repo = Repository.init(
        tmp_path / "repo", PASSPHRASE, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, kdf=FAST_KDF
    )
    run_backup(repo, letta_db.admin_dsn)
    return DatabaseSnapshot(FormatReader(tmp_path / "repo", PASSPHRASE))


def _query(letta_db: LettaDatabase, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(letta_db.admin_dsn) as conn:
        return conn.execute(statement, params).fetchall()


def test_source_schema_and_table_streams(snapshot: DatabaseSnapshot, letta_db: LettaDatabase) -> None:
    source, schema = snapshot.documents["source"], snapshot.documents["schema"]
    server = _query(letta_db, "SELECT current_setting('server_version_num')::int")[0][0]
    assert source["database"] == letta_db.dbname and source["server_version_num"] == server
    assert source["letta_schema"] == "letta" and source["letta_revision"] == "1c28e167b74f"
    assert schema["format_version"] == 1 and schema["server_version_num"] == server
    assert [s["name"] for s in schema["schemas"]] == ["letta"]
    assert {"name": "search_path", "value": "letta"}.items() <= schema["settings"][0].items()
    assert any(e["name"] == "vector" and e["schema"] == "letta" for e in schema["extensions"])
    live_tables = {
        r[0] for r in _query(letta_db, "SELECT tablename FROM pg_tables WHERE schemaname = 'letta'")
    }
    assert {table for _schema, table in snapshot.tables} == live_tables
    assert [(t["schema"], t["name"]) for t in schema["tables"]] == sorted(snapshot.tables)
    for table in schema["tables"]:  # the stream's fields are the table's non-generated columns
        stream = snapshot.tables[(table["schema"], table["name"])]
        assert stream["attributes"]["columns"] == [
            c["name"] for c in table["columns"] if c["generated"] == ""
        ]
    messages = next(t for t in schema["tables"] if t["name"] == "messages")
    assert {c["kind"] for c in messages["constraints"]} >= {"p", "f"}
    sequence = next(s for s in schema["sequences"] if s["name"] == "message_seq_id")
    assert sequence["last_value"] == _query(letta_db, "SELECT last_value FROM letta.message_seq_id")[0][0]
    assert all(isinstance(v, float) for v in snapshot.documents["timings"].values())


def test_rows_decode_to_what_the_database_holds(snapshot: DatabaseSnapshot, letta_db: LettaDatabase) -> None:
    for table in ("agents", "block", "messages", "tools"):
        assert (
            len(snapshot.rows("letta", table))
            == _query(letta_db, f"SELECT count(*) FROM letta.{table}")[0][0]
        )
    values = {row["id"]: row["value"] for row in snapshot.rows("letta", "block")}
    assert values == dict(_query(letta_db, "SELECT id, value FROM letta.block"))  # newlines, quotes, unicode
    assert any("\n" in value for value in values.values() if value)


def test_agent_catalog_runs_in_flight_and_one_agent_by_zone_maps(
    snapshot: DatabaseSnapshot, letta_db: LettaDatabase
) -> None:
    letta = snapshot.documents["letta"]
    assert letta["letta"] is True and letta["revision"] == snapshot.documents["source"]["letta_revision"]
    catalog = {entry["id"]: entry for entry in letta["agents"]}
    assert set(catalog) == {row["id"] for row in snapshot.rows("letta", "agents")}
    assert set(catalog) >= set(letta_db.facts["agent_ids"].values())

    agent = letta_db.facts["agent_ids"]["lb-agent-03"]
    messages = snapshot.tables[("letta", "messages")]
    assert messages["attributes"]["key"] == "agent_id"
    mine, blobs_read = snapshot.rows_of_key("letta", "messages", agent)
    assert len(mine) == catalog[agent]["messages"] > 0
    assert blobs_read < len(messages["blobs"])  # the zone maps spared the other agents' blobs
    assert sorted(r["id"] for r in mine) == sorted(
        r["id"] for r in snapshot.rows("letta", "messages") if r["agent_id"] == agent
    )

    runs = {row["id"]: row for row in snapshot.rows("letta", "runs")}
    steps = snapshot.rows("letta", "steps")
    assert {r["run_id"] for r in letta["runs_in_flight"]} == set(letta_db.facts["crashed_run_ids"])
    for run in letta["runs_in_flight"]:
        assert runs[run["run_id"]]["status"] == run["status"] in ("created", "running")
        assert runs[run["run_id"]]["agent_id"] == run["agent_id"]
        pending = [s for s in steps if s["run_id"] == run["run_id"] and s["status"] == "PENDING"]
        assert run["pending_steps"] == len(pending)


def test_binary_stream_of_archival_passages(snapshot: DatabaseSnapshot, letta_db: LettaDatabase) -> None:
    """§16.1 "Binary records": the vector table is stored binary; its rows, vectors and times decode
    to what the database holds, and one archive's rows are found through the zone maps."""
    attributes = snapshot.tables[("letta", "archival_passages")]["attributes"]
    assert attributes["encoding"] == "copy-binary" and attributes["key"] == "archive_id"
    assert len(attributes["types"]) == len(attributes["columns"])
    assert attributes["types"][attributes["columns"].index("embedding")] == "letta.vector(4096)"
    assert snapshot.tables[("letta", "messages")]["attributes"].get("encoding") is None
    rows, _ = snapshot.binary_rows("letta", "archival_passages")
    live = {
        r[0]: r[1:]
        for r in _query(
            letta_db,
            "SELECT id, text, embedding::text, created_at, is_deleted, archive_id FROM letta.archival_passages",
        )
    }
    assert len(rows) == len(live) > 0
    for row in rows:
        text, embedding, created_at, is_deleted, _archive = live[row["id"]]
        assert (row["text"], row["created_at"], row["is_deleted"]) == (text, created_at, is_deleted)
        stored = row["embedding"]
        expected = [float(v) for v in embedding.strip("[]").split(",")]
        assert stored == list(
            struct.unpack(f">{len(expected)}f", struct.pack(f">{len(expected)}f", *expected))
        )
    archive = rows[0]["archive_id"]
    mine, _blobs = snapshot.binary_rows("letta", "archival_passages", archive)
    assert sorted(r["id"] for r in mine) == sorted(i for i, v in live.items() if v[4] == archive)
