"""Schema capture: what it records, what it refuses, how settings are rendered."""

from __future__ import annotations

import time

import psycopg
import pytest

from lifeboat import pg
from lifeboat.pg.ddl import setting_statement, split_list_setting
from lifeboat.pg.models import DatabaseSchema, DatabaseSetting
from lifeboat.sandbox.postgres import Cluster

from .letta_like import create_letta_like_database
from .roundtrip import capture


@pytest.fixture(scope="module")
def letta_like(pg_cluster: Cluster) -> tuple[str, DatabaseSchema]:
    name = f"lettacap{time.monotonic_ns() % 10**9}"
    dsn = create_letta_like_database(pg_cluster, name)
    return name, capture(dsn)


def test_capture_records_the_letta_layout(letta_like: tuple[str, DatabaseSchema]) -> None:
    name, schema = letta_like
    assert [s.name for s in schema.settings] == ["search_path"] and schema.settings[0].value == name
    assert [(s.name, s.owner) for s in schema.schemas] == [(name, "letta")]
    assert any(e.name == "vector" and e.schema_ == name for e in schema.extensions)
    assert {e.name: e.labels for e in schema.enums}["stepstatus"] == [
        "PENDING",
        "SUCCESS",
        "FAILED",
        "CANCELLED",
    ]
    assert "stopreasontype" in {e.name for e in schema.enums}
    (seq,) = [s for s in schema.sequences if s.name == "message_seq_id"]
    assert (seq.last_value, seq.is_called, seq.owned_by) == (2000, True, None)
    messages = schema.table(name, "messages")
    assert messages.column("sequence_id").default == f"nextval('{name}.message_seq_id'::regclass)"
    assert schema.table(name, "archival_passages").column("embedding").type == f"{name}.vector(4096)"
    assert schema.table(name, "runs").column("completed_at").type == "timestamp without time zone"
    assert schema.table(name, "agents").column("message_ids").type == "json"
    blocks_agents = schema.table(name, "blocks_agents")
    assert blocks_agents.primary_key == [] and ["agent_id", "block_label"] in blocks_agents.unique_keys
    (fk,) = [c for c in blocks_agents.constraints if c.name == "fk_block_id_label"]
    assert "ON UPDATE CASCADE DEFERRABLE" in fk.definition and fk.references is not None
    (nnd,) = [c for c in schema.table(name, "files_agents").constraints if c.kind == "u"]
    assert "NULLS NOT DISTINCT" in nnd.definition
    audit = schema.table(name, "audit_events")
    assert audit.column("id").identity == "d" and audit.column("note_length").generated == "s"
    assert audit.copy_columns == ["id", "note"] and audit.options == ["fillfactor=90"]
    (identity_seq,) = [s for s in schema.sequences if s.owned_by and s.owned_by.identity]
    assert identity_seq.owned_by is not None and identity_seq.owned_by.column == "id"
    assert schema.table(name, "archives").column("name").collation == 'pg_catalog."C"'
    agents = schema.table(name, "agents")
    assert agents.comment == "one row per agent"
    assert [(g.grantee, g.privilege) for g in agents.grants or []] == [("lifeboat_reader", "SELECT")]
    assert schema.tables_biggest_first()[0].total_bytes >= schema.tables_biggest_first()[-1].total_bytes
    assert schema.roles == {"letta", "lifeboat_reader"}


def test_capture_survives_json(letta_like: tuple[str, DatabaseSchema]) -> None:
    _, schema = letta_like
    text = schema.model_dump_json()
    assert '"schema":' in text and '"schema_"' not in text
    assert DatabaseSchema.model_validate_json(text) == schema


def test_unsupported_objects_are_all_listed(pg_cluster: Cluster) -> None:
    name = f"unsupported{time.monotonic_ns() % 10**9}"
    pg_cluster.create_database(name)
    with psycopg.connect(pg_cluster.dsn(name), autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE t (id int);
            CREATE VIEW v AS SELECT * FROM t;
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
            CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();
            CREATE DOMAIN positive AS int CHECK (VALUE > 0);
            CREATE TABLE parent (id int) PARTITION BY RANGE (id);
            CREATE POLICY p ON t USING (true);
            CREATE TABLE pair (a int, b int);
            CREATE STATISTICS st ON a, b FROM pair;
            CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
            CREATE OPERATOR FAMILY fam USING btree;
            CREATE COLLATION coll FROM "C";
            CREATE TEXT SEARCH CONFIGURATION cfg (COPY = simple);
            CREATE TEXT SEARCH DICTIONARY dict (TEMPLATE = simple);
            """
        )
    with pg.connect(pg_cluster.dsn(name)) as conn:
        with pytest.raises(pg.UnsupportedSchema) as caught:
            pg.capture_schema(conn)
        lenient = pg.capture_schema(conn, allow_unsupported=True)
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)  # restored
    objects = caught.value.objects
    assert "view public.v" in objects and "function public.f()" in objects
    assert "trigger trg on public.t" in objects and "domain public.positive" in objects
    assert "partitioned table public.parent" in objects and "policy p on public.t" in objects
    assert "extended statistics public.st" in objects and "operator public.===" in objects
    assert "operator family public.fam" in objects and "collation public.coll" in objects
    assert (
        "text search configuration public.cfg" in objects and "text search dictionary public.dict" in objects
    )
    assert "\n" not in str(caught.value)
    assert any("view public.v" in warning for warning in lenient.warnings)


def test_list_settings_are_split_and_quoted() -> None:
    assert split_list_setting('"$user", public') == ["$user", "public"]
    assert split_list_setting('letta, "we""ird, name"') == ["letta", 'we"ird, name']
    statement = setting_statement("db", DatabaseSetting(name="search_path", value='"$user", letta'))
    assert statement.text() == """ALTER DATABASE "db" SET "search_path" TO '$user', 'letta'"""
    statement = setting_statement("db", DatabaseSetting(role="r", name="work_mem", value="64MB"))
    assert statement.text() == """ALTER ROLE "r" IN DATABASE "db" SET "work_mem" TO '64MB'"""
    assert statement.roles == {"r"}
