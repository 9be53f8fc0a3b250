"""Binary COPY: batches of whole tuples with keys, a loss-free round trip, the text view equal to
the server's own COPY TEXT (ISO, UTC), and malformed tuples refused with one clear error."""

from __future__ import annotations

import struct
import time

import psycopg
import pytest

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.pg import copybinary
from lifeboat.pg.models import QualifiedName
from lifeboat.sandbox.postgres import Cluster

TABLE = QualifiedName(schema="public", name="things")
COLUMNS = [
    "id",
    "agent_id",
    "body",
    "doc",
    "docb",
    "flag",
    "small",
    "big",
    "at",
    "naive",
    "day",
    "uid",
    "kind",
    "embedding",
]
TYPES = [
    "integer", "character varying", "text", "json", "jsonb", "boolean", "smallint", "bigint",
    "timestamp with time zone", "timestamp without time zone", "date", "uuid", "public.mood", "vector(16)",
]  # fmt: skip


@pytest.fixture
def things_dsn(pg_cluster: Cluster) -> str:
    name = f"copybin_{time.monotonic_ns()}"
    pg_cluster.create_database(name)
    with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'odd\tone')")
        conn.execute(
            """CREATE TABLE things (id int, agent_id varchar, body text, doc json, docb jsonb, flag bool,
               small smallint, big bigint, at timestamptz, naive timestamp, day date, uid uuid, kind mood,
               embedding vector(16))"""
        )
        conn.execute(
            r"""INSERT INTO things
                SELECT i, CASE WHEN i % 50 = 0 THEN NULL ELSE 'agent-' || (i % 7) END,
                       repeat(E'a\tb\nc\\d é \r\b\f\v', i % 5),
                       CASE WHEN i % 3 = 0 THEN NULL ELSE json_build_object('n', i, 's', E'x\ty\\') END,
                       jsonb_build_object('n', i, 'list', jsonb_build_array(1, 'two', null)),
                       i % 2 = 0, (i % 300 - 150)::smallint, i::bigint * -123456789,
                       timestamptz '2026-12-03 23:29:10.732702+00' + i * interval '1 day 3.5 s',
                       timestamp '1999-12-31 23:59:59' - i * interval '37 days 0.000001 s',
                       date '2000-01-01' + (i * 97 - 150000),
                       md5(i::text)::uuid,
                       CASE WHEN i % 2 = 0 THEN 'ok'::mood ELSE E'odd\tone'::mood END,
                       (SELECT array_agg(((i * 7919 + j) % 1000) / 997.0 - 0.3)::vector(16)
                        FROM generate_series(1, 16) j)
                FROM generate_series(1, 2000) i"""
        )
        conn.execute(
            """INSERT INTO things (id, at, naive, day) VALUES
               (-1, 'infinity', '-infinity', 'infinity'), (-2, '-infinity', 'infinity', '-infinity'),
               (-3, '0044-03-15 12:00:00.5+00 BC', '4713-11-24 00:00:00 BC', '0001-01-01 BC'),
               (-4, '294276-12-31 23:59:59.999999+00', '10000-01-01 00:00:00', '5874897-12-31')"""
        )
    return pg_cluster.dsn(name)


def _text(conn: psycopg.Connection, order: list[str]) -> bytes:
    batches = pg.copy_out(conn, TABLE, COLUMNS, order_by=order)
    return b"".join(batch.data for batch in batches)


def test_batches_hold_whole_tuples_and_keys(things_dsn: str) -> None:
    with pg.connect(things_dsn) as conn:
        batches = list(
            pg.copy_out(
                conn,
                TABLE,
                COLUMNS,
                order_by=["agent_id", "id"],
                key_column="agent_id",
                batch_bytes=4096,
                binary=True,
            )
        )
        text = list(pg.copy_out(conn, TABLE, COLUMNS, order_by=["agent_id", "id"], key_column="agent_id"))
    assert len(batches) > 10
    for batch in batches:
        assert batch.ends is not None and batch.ends[-1] == len(batch.data)
        assert len(batch.ends) == batch.rows == len(batch.keys or [])
        assert copybinary.split_rows(batch.data, len(COLUMNS))  # whole tuples, no header or trailer
    assert [k for b in batches for k in b.keys or []] == [k for b in text for k in b.keys or []]


def test_text_view_prints_what_the_server_prints(things_dsn: str) -> None:
    with pg.connect(things_dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        assert pg.prints_utc_iso(conn)
        binary = b"".join(b.data for b in pg.copy_out(conn, TABLE, COLUMNS, order_by=["id"], binary=True))
        text = _text(conn, ["id"])
    view = copybinary.TextView(TYPES)
    printed = view.lines(binary)
    expected = text.split(b"\n")[:-1]
    assert len(printed) == len(expected) == 2004
    for mine, theirs in zip(printed, expected, strict=True):
        mine_fields, their_fields = mine[:-1].split(b"\t"), theirs.split(b"\t")
        assert mine_fields[:-1] == their_fields[:-1]  # every column but the vector: byte for byte
        if their_fields[-1] != b"\\N":  # the vector: the same float4 values
            assert _floats(mine_fields[-1]) == _floats(their_fields[-1])


def _floats(text: bytes) -> list[float]:
    values = [float(v) for v in text.strip(b"[]").split(b",")]
    return list(struct.unpack(f">{len(values)}f", struct.pack(f">{len(values)}f", *values)))


def test_binary_round_trip_and_text_view_load_the_same_rows(things_dsn: str) -> None:
    with pg.connect(things_dsn) as source, pg.connect(things_dsn) as conn:
        conn.execute("CREATE TABLE binary_copy (LIKE things)")
        conn.execute("CREATE TABLE text_copy (LIKE things)")
        batches = list(pg.copy_out(source, TABLE, COLUMNS, batch_bytes=1000, binary=True))
        chunks = [b.data for b in batches]
        rows = pg.copy_in(
            conn, QualifiedName(schema="public", name="binary_copy"), COLUMNS, chunks, binary=True
        )
        view = copybinary.TextView(TYPES)
        lines = [b"".join(view.lines(chunk)) for chunk in chunks]
        pg.copy_in(conn, QualifiedName(schema="public", name="text_copy"), COLUMNS, lines)
        assert rows == 2004
        for copy in ("binary_copy", "text_copy"):
            differing = conn.execute(
                f"SELECT count(*) FROM ((SELECT t::text FROM things t EXCEPT ALL SELECT c::text FROM {copy} c)"
                f" UNION ALL (SELECT c::text FROM {copy} c EXCEPT ALL SELECT t::text FROM things t)) d"
            ).fetchone()
            assert differing == (0,), copy


def test_split_rows_of_whole_tuples_and_of_nothing() -> None:
    row = struct.pack(">h", 2) + struct.pack(">i", 1) + b"a" + struct.pack(">i", -1)
    assert copybinary.split_rows(row * 3, 2) == [row] * 3
    assert copybinary.split_rows(b"", 2) == []  # no rows (a ValueError of zip before)


def test_malformed_tuples_are_refused_with_one_line(things_dsn: str) -> None:
    with pg.connect(things_dsn) as conn:
        data = next(iter(pg.copy_out(conn, TABLE, COLUMNS, binary=True))).data
    first = copybinary.split_rows(data)[0]
    bad_length = first[:2] + struct.pack(">i", 1 << 30) + first[6:]
    with pytest.raises(copybinary.MalformedRows):
        copybinary.split_rows(bad_length, len(COLUMNS))
    with pytest.raises(copybinary.MalformedRows, match="fields, expected"):
        copybinary.split_rows(struct.pack(">h", 3) + first[2:], len(COLUMNS))
    with pytest.raises(copybinary.MalformedRows):
        copybinary.split_rows(first[:-1], len(COLUMNS))
    with pg.connect(things_dsn) as conn:
        conn.execute("CREATE TABLE target (LIKE things)")
        with pytest.raises(DatabaseError) as caught:
            pg.copy_in(
                conn, QualifiedName(schema="public", name="target"), COLUMNS, [bad_length], binary=True
            )
        assert "\n" not in str(caught.value)
        assert conn.execute("SELECT count(*) FROM target").fetchone() == (0,)


def test_type_names() -> None:
    assert copybinary.base_type("letta.vector(4096)") == copybinary.base_type("vector(16)") == "vector"
    assert copybinary.base_type("character varying(255)") == "character varying"
    assert not copybinary.text_view_supports("foo.text")  # a user type named text is not text
    assert copybinary.text_view_supports("letta.mood", ["letta.mood"])
    assert not copybinary.text_view_supports("character varying[]")
