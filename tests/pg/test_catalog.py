"""pg/catalog.py on real servers (PostgreSQL 16, the oldest major the sandbox runs, and 18)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from lifeboat.pg import catalog
from lifeboat.sandbox.postgres import Cluster

SCHEMA = "Shop Floor"  # quoting: mixed case and a space

DDL = f"""
CREATE SCHEMA "{SCHEMA}";
SET search_path TO "{SCHEMA}";
CREATE TABLE parents (
    id text PRIMARY KEY,
    code integer NOT NULL,
    label text COLLATE "C",
    CONSTRAINT parents_code_key UNIQUE (code),
    CONSTRAINT parents_code_label_key UNIQUE (code, label)
);
CREATE SEQUENCE ticket_seq;
CREATE TABLE children (
    parent_id text NOT NULL REFERENCES parents (id) ON DELETE CASCADE DEFERRABLE,
    position integer NOT NULL DEFAULT nextval('ticket_seq'),
    doubled integer GENERATED ALWAYS AS (position * 2) STORED,
    note text,
    CONSTRAINT children_pkey PRIMARY KEY (parent_id, position),
    CONSTRAINT children_note_check CHECK (note <> '')
);
CREATE TABLE links (a text, b text, CONSTRAINT links_a_b_key UNIQUE (a, b),
                    CONSTRAINT links_a_fkey FOREIGN KEY (a) REFERENCES parents (id) ON DELETE SET NULL);
CREATE INDEX children_note_idx ON children (note);
COMMENT ON COLUMN parents.code IS 'the code';
"""


@pytest.fixture(params=["pg16", "pg18"])
def conn(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection]:
    cluster: Cluster = request.getfixturevalue(f"{request.param}_cluster")
    name = "catalog_test"
    cluster.drop_database(name)
    cluster.create_database(name)
    try:
        with psycopg.connect(cluster.dsn(name), autocommit=True) as connection:
            connection.execute(DDL)
            yield connection
    finally:
        cluster.drop_database(name)


def test_columns_carry_types_not_null_defaults_and_generation(conn: psycopg.Connection) -> None:
    columns = catalog.columns(conn, SCHEMA)
    assert sorted(columns) == ["children", "links", "parents"]
    parents = {c.name: c for c in columns["parents"]}
    assert [c.name for c in columns["parents"]] == ["id", "code", "label"]  # attribute order
    assert parents["id"].not_null and parents["code"].not_null and not parents["label"].not_null
    assert parents["code"].comment == "the code"
    assert parents["label"].collation == 'pg_catalog."C"'
    children = {c.name: c for c in columns["children"]}
    assert children["position"].default == "nextval('ticket_seq'::regclass)"
    assert children["doubled"].generated == "s" and children["note"].generated == ""
    assert catalog.column_types(conn, SCHEMA)["children"] == {
        "parent_id": "text",
        "position": "integer",
        "doubled": "integer",
        "note": "text",
    }


def test_keys_primary_first_then_fewest_columns(conn: psycopg.Connection) -> None:
    assert catalog.primary_keys(conn, SCHEMA) == {"parents": ("id",), "children": ("parent_id", "position")}
    assert catalog.unique_keys(conn, SCHEMA) == {
        "parents": [("id",), ("code",), ("code", "label")],
        "children": [("parent_id", "position")],
        "links": [("a", "b")],
    }
    kinds = {c.name: c.kind for c in catalog.constraints(conn, SCHEMA)["children"]}
    assert kinds == {"children_pkey": "p", "children_note_check": "c", "children_parent_id_fkey": "f"}
    pkey = next(c for c in catalog.constraints(conn, SCHEMA)["parents"] if c.kind == "p")
    assert pkey.index_definition is not None and "UNIQUE INDEX parents_pkey" in pkey.index_definition


def test_foreign_keys_with_actions_and_deferrability(conn: psycopg.Connection) -> None:
    assert catalog.foreign_keys(conn, SCHEMA) == (
        catalog.ForeignKey(
            "children_parent_id_fkey", "children", ("parent_id",), "parents", ("id",), "c", True
        ),
        catalog.ForeignKey("links_a_fkey", "links", ("a",), "parents", ("id",), "n", False),
    )


def test_indexes_sequences_and_unknown_schema(conn: psycopg.Connection) -> None:
    assert [i.name for i in catalog.indexes(conn, SCHEMA)["children"]] == ["children_note_idx"]
    assert "parents" not in catalog.indexes(conn, SCHEMA)  # constraint indexes are not listed
    assert catalog.sequence_names(conn, SCHEMA) == ("ticket_seq",)
    assert catalog.columns(conn, "no such schema") == {}
    assert catalog.foreign_keys(conn, "no such schema") == ()


def test_schemas_with_tables_ranks_by_count_then_search_path(conn: psycopg.Connection) -> None:
    conn.execute("CREATE SCHEMA other; CREATE TABLE other.parents (id text)")
    conn.execute("CREATE SCHEMA third; CREATE TABLE third.parents (id text)")
    assert catalog.schemas_with_tables(conn, ["parents", "children"]) == [SCHEMA, "other", "third"]
    conn.execute("SET search_path TO third")
    assert catalog.schemas_with_tables(conn, ["parents"]) == ["third", SCHEMA, "other"]
    with conn.transaction():
        catalog.set_local_search_path(conn, [SCHEMA, "other"])
        assert catalog.current_schema(conn) == SCHEMA
    assert catalog.current_schema(conn) == "third"
    assert catalog.extension_schema(conn, "no_such_extension") is None


def test_installed_extension_and_unreadable_relations(conn: psycopg.Connection) -> None:
    plpgsql = catalog.installed_extension(conn, "plpgsql")
    assert plpgsql is not None and plpgsql.schema == "pg_catalog" and plpgsql.version
    assert catalog.installed_extension(conn, "no_such_extension") is None
    assert catalog.unreadable_relations(conn, SCHEMA) == []  # the superuser reads everything
    role = "lifeboat_catalog_reader"
    conn.execute(f"DROP ROLE IF EXISTS {role}")
    conn.execute(f"CREATE ROLE {role}")
    try:
        conn.execute(f'GRANT USAGE ON SCHEMA "{SCHEMA}" TO {role}')
        conn.execute(f'GRANT SELECT ON "{SCHEMA}".parents TO {role}')
        conn.execute(f"SET ROLE {role}")
        assert catalog.unreadable_relations(conn, SCHEMA) == ["children", "links", "ticket_seq"]
    finally:
        conn.execute("RESET ROLE")
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")
