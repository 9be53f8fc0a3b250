"""Stored SQL fragments are checked for the shape of their kind, and each statement runs alone."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from lifeboat.pg.ddl import Statement, execute_one, execute_statement_queries, setting_statement
from lifeboat.pg.fragments import (
    UnsafeFragment,
    check_collation,
    check_constraint,
    check_expression,
    check_index,
    check_privilege,
    check_sequence_type,
    check_type,
)
from lifeboat.pg.models import DatabaseSetting, QualifiedName
from lifeboat.sandbox.postgres import Cluster

TABLE = QualifiedName(schema="letta", name="t")

GOOD_TYPES = [
    "character varying(255)",
    "letta.vector(4096)",
    'letta."MyEnum"',
    "timestamp(3) with time zone[]",
    "numeric(10,2)",
    "interval day to second",
    "double precision",
    "bit varying(3)",
]
BAD_TYPES = [
    "integer; CREATE ROLE evil",
    "integer DEFAULT 1",
    "integer, evil integer",
    "integer -- the rest of the line",
    "integer /* c */",
    "setof integer",
    "integer FROM pg_class",
    "integer UNION SELECT 1",
    "",
]
GOOD_DEFAULTS = [
    "'{}'::json",
    "'[]'::jsonb",
    "nextval('letta.message_seq_id'::regclass)",
    "CURRENT_TIMESTAMP",
    "now()",
    "false",
    "gen_random_uuid()",
    "(now() + '1 day'::interval)",
    "ARRAY['a'::text]",
    "'select this option'::text",  # a statement keyword inside a string is just text
]
BAD_DEFAULTS = [
    "now(); CREATE TABLE pwned()",
    "(SELECT 1)",
    "pg_read_file('/etc/passwd')",
    "pg_catalog.pg_read_file('/etc/passwd')",
    "query_to_xml('COPY x TO PROGRAM ''id''', true, true, '')",
    "lo_import('/etc/passwd')",
    "dblink_exec('dbname=x', 'DROP TABLE y')",
    "set_config('search_path', 'evil', false)",
    "count(*) OVER ()",
    "1) , (2",
    "'a\\'",
    "1 -- x",
]
GOOD_CONSTRAINTS = [
    ("f", "FOREIGN KEY (agent_id) REFERENCES letta.agents(id) ON DELETE CASCADE"),
    (
        "f",
        "FOREIGN KEY (a, b) REFERENCES letta.o(x, y) ON UPDATE CASCADE ON DELETE SET NULL DEFERRABLE NOT VALID",
    ),
    ("c", "CHECK (((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])))"),
    ("c", "CHECK ((n > 0)) NOT VALID"),
    ("u", "UNIQUE NULLS NOT DISTINCT (a, b) INCLUDE (c) WITH (fillfactor='90')"),
    ("p", "PRIMARY KEY (id)"),
    ("x", "EXCLUDE USING gist (a WITH &&) WHERE ((b > 1))"),
]
BAD_CONSTRAINTS = [
    ("c", "CHECK ((a > 0)); DROP TABLE x"),
    ("c", "CHECK ((a > 0)), ADD COLUMN b integer"),
    ("f", "CHECK (true)"),
    ("c", "CHECK ((lo_export(1, '/tmp/x') > 0))"),
    ("c", "CHECK ((EXISTS (SELECT 1)))"),
    ("f", "FOREIGN KEY (a) REFERENCES letta.o(id), DROP CONSTRAINT x"),
    ("p", "PRIMARY KEY USING INDEX other"),
    ("z", "CHECK (true)"),
]
GOOD_INDEXES = [
    "CREATE INDEX i ON letta.t USING btree (a)",
    'CREATE UNIQUE INDEX i ON letta.t USING btree (conversation_id, "position")',
    "CREATE INDEX i ON letta.t USING btree (lower((name)::text)) WHERE (is_deleted = false)",
    "CREATE INDEX i ON letta.t USING hnsw (embedding letta.vector_cosine_ops) WITH (m='16')",
]
BAD_INDEXES = [
    "CREATE INDEX i ON letta.t USING btree (a); CREATE ROLE evil",
    "CREATE INDEX i ON letta.t USING btree ((pg_read_file('x')))",
    "CREATE INDEX other ON letta.t USING btree (a)",
    "CREATE INDEX i ON letta.other USING btree (a)",
    "CREATE INDEX CONCURRENTLY i ON letta.t USING btree (a)",
    "CREATE INDEX i ON letta.t USING btree (a) TABLESPACE pg_default",
    "DROP TABLE letta.t",
    "CREATE INDEX i ON letta.t USING btree (a) WHERE (a IN (SELECT 1))",
]


@pytest.mark.parametrize("text", GOOD_TYPES)
def test_types_as_the_server_prints_them_pass(text: str) -> None:
    assert check_type(text, "column t.c").as_string() == text


@pytest.mark.parametrize("text", BAD_TYPES)
def test_anything_but_a_type_is_refused(text: str) -> None:
    with pytest.raises(UnsafeFragment, match=r"^column t\.c: column type .* refused \("):
        check_type(text, "column t.c")


@pytest.mark.parametrize("text", GOOD_DEFAULTS)
def test_defaults_as_the_server_prints_them_pass(text: str) -> None:
    check_expression(text, "column t.c")


@pytest.mark.parametrize("text", BAD_DEFAULTS)
def test_defaults_with_statements_subqueries_or_admin_functions_are_refused(text: str) -> None:
    with pytest.raises(UnsafeFragment, match="refused"):
        check_expression(text, "column t.c")


@pytest.mark.parametrize(("kind", "text"), GOOD_CONSTRAINTS)
def test_constraint_clauses_pass(kind: str, text: str) -> None:
    check_constraint(text, kind, "constraint t.c")


@pytest.mark.parametrize(("kind", "text"), BAD_CONSTRAINTS)
def test_anything_but_one_constraint_clause_of_its_kind_is_refused(kind: str, text: str) -> None:
    with pytest.raises(UnsafeFragment, match="refused"):
        check_constraint(text, kind, "constraint t.c")


@pytest.mark.parametrize("text", GOOD_INDEXES)
def test_index_definitions_pass(text: str) -> None:
    check_index(text, "index letta.i", name="i", table=TABLE)


@pytest.mark.parametrize("text", BAD_INDEXES)
def test_anything_but_one_create_index_of_that_index_is_refused(text: str) -> None:
    with pytest.raises(UnsafeFragment, match="refused"):
        check_index(text, "index letta.i", name="i", table=TABLE)


def test_unique_index_of_a_key_must_be_unique() -> None:
    with pytest.raises(UnsafeFragment, match="not unique"):
        check_index("CREATE INDEX i ON letta.t USING btree (a)", "x", name="i", table=TABLE, unique=True)


def test_privileges_sequence_types_collations_and_settings() -> None:
    assert check_privilege("SELECT", "x").as_string() == "SELECT"
    assert check_sequence_type("bigint", "x").as_string() == "bigint"
    assert check_collation('"C"', "x").as_string() == '"C"'
    assert check_collation('pg_catalog."en-x-icu"', "x").as_string() == 'pg_catalog."en-x-icu"'
    for bad in ("SELECT ON x TO PUBLIC; CREATE ROLE evil; GRANT SELECT", "ALL", "select"):
        with pytest.raises(UnsafeFragment):
            check_privilege(bad, "x")
    with pytest.raises(UnsafeFragment):
        check_sequence_type("bigint; CREATE ROLE evil", "x")
    with pytest.raises(UnsafeFragment):
        check_collation('"C"; CREATE ROLE evil', "x")
    for name in ("session_preload_libraries", "standard_conforming_strings", "role"):
        with pytest.raises(UnsafeFragment, match="never applies"):
            setting_statement("db", DatabaseSetting(name=name, value="x"))


def test_the_server_refuses_a_second_statement_in_one_execute(pg_cluster: Cluster) -> None:
    """Even text that got past every check could not run a second statement: the extended
    protocol makes the server itself refuse it; each of a Statement's queries runs alone."""
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            execute_one(conn, sql.SQL("SELECT 1; CREATE ROLE lifeboat_second_statement"))
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'lifeboat_second_statement'").fetchone()
            is None
        )
        statement = Statement(sql.SQL("SELECT 1"), then=(sql.SQL("SELECT 2"),))
        execute_statement_queries(conn, statement)
