"""Schema apply beyond the Letta layout: generic features, missing roles, refusals."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.pg import apply as apply_module
from lifeboat.pg.fragments import index_has_expressions
from lifeboat.sandbox.postgres import Cluster

from .roundtrip import capture, newest_pg_dump, normalized_schema_dump, restore, table_digests

_names = itertools.count()

EXTRAS_SQL = r"""
CREATE SCHEMA "Other Schema";
COMMENT ON SCHEMA "Other Schema" IS 'quoted; with ''quotes''';
CREATE TYPE "Other Schema".mood AS ENUM ('it''s ok', 'tab	in label', 'ünï');
CREATE SEQUENCE "Other Schema".countdown AS integer INCREMENT BY -2 MINVALUE -100 MAXVALUE 50 START WITH 50 CACHE 3 CYCLE;
CREATE TABLE "Other Schema"."Weird Table" (
    "select" integer NOT NULL DEFAULT nextval('"Other Schema".countdown'),
    "Mixed Case" "Other Schema".mood,
    during tstzrange,
    body text CHECK (length(body) < 1000),
    CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&)
);
ALTER SEQUENCE "Other Schema".countdown OWNED BY "Other Schema"."Weird Table"."select";
CREATE INDEX weird_expression ON "Other Schema"."Weird Table" (lower(body)) WHERE "select" > 0;
COMMENT ON INDEX "Other Schema".weird_expression IS 'expression + partial';
COMMENT ON CONSTRAINT no_overlap ON "Other Schema"."Weird Table" IS 'exclusion';
COMMENT ON CONSTRAINT "Weird Table_body_check" ON "Other Schema"."Weird Table" IS 'inline check';
CREATE UNLOGGED TABLE public.cache_entries (key text PRIMARY KEY, value bytea);
CREATE TABLE public.no_columns ();
CREATE TABLE public.empty_table (id int PRIMARY KEY);
GRANT SELECT ON public.cache_entries TO PUBLIC;
INSERT INTO "Other Schema"."Weird Table" ("Mixed Case", during, body)
SELECT (ARRAY['it''s ok', 'tab	in label', 'ünï'])[i % 3 + 1]::"Other Schema".mood,
       tstzrange('2025-01-01'::timestamptz + i * interval '1 day', '2025-01-01'::timestamptz + (i + 1) * interval '1 day'),
       'row ' || i
FROM generate_series(1, 20) i;
INSERT INTO "Other Schema"."Weird Table" ("select", body) VALUES (7, 'violates the NOT VALID check');
INSERT INTO public.cache_entries VALUES ('k1', '\x00ff10'), ('k2', NULL);
INSERT INTO public.no_columns DEFAULT VALUES;
INSERT INTO public.no_columns DEFAULT VALUES;
ALTER TABLE "Other Schema"."Weird Table" ADD CONSTRAINT later_check CHECK ("select" <> 7) NOT VALID;
"""


def _ensure_role(conn: psycopg.Connection, role: str) -> None:
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        conn.execute(f"CREATE ROLE {role}")  # type: ignore[arg-type]


def _extras_database(cluster: Cluster, name: str) -> str:
    cluster.create_database(name)
    with psycopg.connect(cluster.dsn(name), autocommit=True) as conn:
        conn.execute(EXTRAS_SQL)
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS 'the extras'")
        conn.execute(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
        conn.execute(f"ALTER DATABASE \"{name}\" SET work_mem TO '12MB'")
        _ensure_role(conn, "extras_app")
        conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO extras_app')
        conn.execute(f'ALTER ROLE extras_app IN DATABASE "{name}" SET search_path TO "Other Schema", public')
    return cluster.dsn(name)


@pytest.mark.parametrize("source,target", [("pg18", "pg18"), ("pg16", "pg18"), ("pg18", "pg16")])
def test_generic_features_round_trip(request: pytest.FixtureRequest, source: str, target: str) -> None:
    source_cluster: Cluster = request.getfixturevalue(f"{source}_cluster")
    target_cluster: Cluster = request.getfixturevalue(f"{target}_cluster")
    n = next(_names)
    source_dsn = _extras_database(source_cluster, f"extras_src{n}")
    with psycopg.connect(target_cluster.dsn(), autocommit=True) as conn:
        _ensure_role(conn, "extras_app")

    schema, report = restore(source_dsn, target_cluster, f"extras_dst{n}", pipelined=False)

    assert report.skipped == []
    target_dsn = target_cluster.dsn(f"extras_dst{n}")
    assert table_digests(target_dsn) == table_digests(source_dsn)
    pg_dump = newest_pg_dump(source_cluster, target_cluster)
    older = target_cluster.major < source_cluster.major
    assert normalized_schema_dump(pg_dump, target_dsn, drop_not_null_names=older) == normalized_schema_dump(
        pg_dump, source_dsn, drop_not_null_names=older
    )
    restored = capture(target_dsn)
    assert restored.settings == schema.settings
    assert restored.database.comment == "the extras" and restored.database.grants == schema.database.grants
    assert [s.model_dump(exclude={"owner"}) for s in restored.sequences] == [
        s.model_dump(exclude={"owner"}) for s in schema.sequences
    ]
    with psycopg.connect(target_dsn) as conn:
        # the NOT VALID check stayed NOT VALID (its violating row is back), the exclusion holds
        assert conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'later_check'"
        ).fetchone() == (False,)
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute(
                """INSERT INTO "Other Schema"."Weird Table" (during) VALUES (tstzrange('2025-01-03', '2025-01-04'))"""
            )


def test_missing_roles_are_reported_not_fatal(pg16_cluster: Cluster, pg18_cluster: Cluster) -> None:
    n = next(_names)
    role = f"only_on_source_{n}"
    pg16_cluster.create_database(f"roles_src{n}")
    with psycopg.connect(pg16_cluster.dsn(f"roles_src{n}"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role}")
        conn.execute("CREATE TABLE owned (id int PRIMARY KEY)")
        conn.execute(f"ALTER TABLE owned OWNER TO {role}")
        conn.execute(f"GRANT SELECT ON owned TO {role}")
        conn.execute("INSERT INTO owned VALUES (1), (2)")
    _, report = restore(pg16_cluster.dsn(f"roles_src{n}"), pg18_cluster, f"roles_dst{n}")
    assert report.missing_roles == {role}
    assert any("OWNER TO" in skipped for skipped in report.skipped)
    assert table_digests(pg18_cluster.dsn(f"roles_dst{n}")) == table_digests(
        pg16_cluster.dsn(f"roles_src{n}")
    )


def test_pre_data_refuses_a_non_empty_target_and_explains_extension_privileges(pg_cluster: Cluster) -> None:
    n = next(_names)
    pg_cluster.create_database(f"refuse_src{n}")
    pg_cluster.execute("CREATE EXTENSION vector; CREATE TABLE t (v vector(3))", f"refuse_src{n}")
    schema = capture(pg_cluster.dsn(f"refuse_src{n}"))
    with (
        pg.connect(pg_cluster.dsn(f"refuse_src{n}")) as conn,
        pytest.raises(DatabaseError, match=r"not empty.*public\.t"),
    ):
        pg.apply_pre_data(conn, schema)
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        _ensure_role(conn, "plain_owner")
        conn.execute("ALTER ROLE plain_owner LOGIN")
    pg_cluster.create_database(f"refuse_dst{n}", owner="plain_owner")
    with (
        pg.connect(pg_cluster.dsn(f"refuse_dst{n}", "plain_owner")) as conn,
        pytest.raises(DatabaseError, match=r"extension vector needs more privileges.*as a superuser"),
    ):
        pg.apply_pre_data(conn, schema)


def test_autovacuum_paused_during_the_build_then_the_source_settings_are_back(pg_cluster: Cluster) -> None:
    n = next(_names)
    pg_cluster.create_database(f"autovac_src{n}")
    pg_cluster.execute(
        "CREATE TABLE quiet (id int PRIMARY KEY, body text) WITH (autovacuum_enabled = false, fillfactor = 90);"
        "CREATE TABLE loud (id int) WITH (autovacuum_enabled = true);"
        "CREATE TABLE plain (id int, body text)",
        f"autovac_src{n}",
    )
    schema = capture(pg_cluster.dsn(f"autovac_src{n}"))
    pg_cluster.create_database(f"autovac_dst{n}")
    options = (
        "SELECT c.relname, c.reloptions, t.reloptions FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid"
        " WHERE c.relname IN ('quiet', 'loud', 'plain') ORDER BY 1"
    )
    with pg.connect(pg_cluster.dsn(f"autovac_dst{n}")) as conn:
        pg.apply_pre_data(conn, schema)
        pg.pause_autovacuum(conn, schema.tables)
        paused = conn.execute(options).fetchall()
        pg.resume_autovacuum(conn, schema.tables)
        resumed = conn.execute(options).fetchall()
    off = "autovacuum_enabled=false"
    assert paused == [
        ("loud", ["autovacuum_enabled=true"], None),  # its own setting is kept throughout
        ("plain", [off], [off]),
        ("quiet", [off, "fillfactor=90"], None),
    ]
    assert resumed == [
        ("loud", ["autovacuum_enabled=true"], None),
        ("plain", None, None),
        ("quiet", [off, "fillfactor=90"], None),
    ]
    restored = capture(pg_cluster.dsn(f"autovac_dst{n}"))
    assert [(t.name, t.options) for t in restored.tables] == [(t.name, t.options) for t in schema.tables]


def test_toast_table_options_come_back(pg_cluster: Cluster) -> None:
    """A TOAST table's own storage options (``toast.*``) are captured and recreated, and a table
    that sets ``toast.autovacuum_enabled`` keeps it through the autovacuum pause."""
    n = next(_names)
    pg_cluster.create_database(f"toast_src{n}")
    pg_cluster.execute(
        "CREATE TABLE toasty (id int, body text)"
        " WITH (fillfactor = 80, toast.autovacuum_enabled = false, toast.vacuum_truncate = false)",
        f"toast_src{n}",
    )
    schema = capture(pg_cluster.dsn(f"toast_src{n}"))
    assert schema.table("public", "toasty").options == [
        "fillfactor=80",
        "toast.autovacuum_enabled=false",
        "toast.vacuum_truncate=false",
    ]
    pg_cluster.create_database(f"toast_dst{n}")
    with pg.connect(pg_cluster.dsn(f"toast_dst{n}")) as conn:
        pg.apply_pre_data(conn, schema)
        pg.pause_autovacuum(conn, schema.tables)
        pg.resume_autovacuum(conn, schema.tables)
    restored = capture(pg_cluster.dsn(f"toast_dst{n}"))
    assert [(t.name, t.options) for t in restored.tables] == [(t.name, t.options) for t in schema.tables]


def test_pipelined_restore_analyzes_every_table_and_expression_index(pg_cluster: Cluster) -> None:
    """A table without an expression index is analyzed right after its load, one with an expression
    index after that index exists: both end with statistics, the expression's included."""
    n = next(_names)
    source_dsn = _extras_database(pg_cluster, f"stats_src{n}")
    restore(source_dsn, pg_cluster, f"stats_dst{n}")
    with psycopg.connect(pg_cluster.dsn(f"stats_dst{n}")) as conn:
        analyzed = conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL ORDER BY 1"
        ).fetchall()
        expression = conn.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'weird_expression'"
        ).fetchone()
    assert analyzed == [("Weird Table",), ("cache_entries",), ("empty_table",), ("no_columns",)]
    assert expression == (1,)


@pytest.mark.parametrize(
    "definition,expressions",
    [
        ("CREATE INDEX i ON s.t USING btree (a, b DESC NULLS LAST)", False),
        (
            'CREATE UNIQUE INDEX i ON s.t USING btree ("Mixed" text_pattern_ops) INCLUDE (c) WHERE (a > 0)',
            False,
        ),
        ("CREATE INDEX i ON s.t USING btree (lower(body))", True),
        ("CREATE INDEX i ON s.t USING btree (a, ((b + 1)))", True),
    ],
)
def test_index_expressions_are_recognised(definition: str, expressions: bool) -> None:
    assert index_has_expressions(definition) is expressions


def test_a_table_is_analyzed_after_its_expression_indexes_exclusions_included(pg_cluster: Cluster) -> None:
    n = next(_names)
    pg_cluster.create_database(f"exprs_src{n}")
    pg_cluster.execute(
        "CREATE TABLE booking (a timestamptz, b timestamptz, EXCLUDE USING gist (tstzrange(a, b) WITH &&));"
        "CREATE TABLE slot (during tstzrange, EXCLUDE USING gist (during WITH &&));"
        "CREATE TABLE named (id int PRIMARY KEY, name text UNIQUE); CREATE INDEX ON named (lower(name));"
        "CREATE TABLE plain (id int PRIMARY KEY, name text); CREATE INDEX ON plain (name) WHERE id > 0;",
        f"exprs_src{n}",
    )
    schema = capture(pg_cluster.dsn(f"exprs_src{n}"))
    early, late = apply_module._analyze_tasks(schema, pg.post_data_statements(schema))
    # an exclusion constraint is captured without its index definition: assumed to have expressions
    assert [task.key for task in early] == ["analyze:public.plain"]
    assert sorted(task.key for task in late) == [
        "analyze:public.booking",
        "analyze:public.named",
        "analyze:public.slot",
    ]


@pytest.mark.parametrize("jobs,workers", [(1, None), (2, "0")])
def test_restore_connections_build_without_parallel_workers_when_they_are_several(
    pg_cluster: Cluster, jobs: int, workers: str | None
) -> None:
    """With two or more connections building side by side, each builds without parallel
    maintenance workers (they would compete for the same cores and spill to temporary files);
    a single connection keeps the server's setting."""
    n = next(_names)
    pg_cluster.create_database(f"workers_src{n}")
    pg_cluster.execute("CREATE TABLE t (id int PRIMARY KEY)", f"workers_src{n}")
    schema = capture(pg_cluster.dsn(f"workers_src{n}"))
    pg_cluster.create_database(f"workers_dst{n}")
    dsn = pg_cluster.dsn(f"workers_dst{n}")
    with pg.connect(dsn) as conn:
        pg.apply_pre_data(conn, schema)
        default = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
    seen: list[str] = []

    def load(conn: psycopg.Connection, part: pg.TablePart) -> None:
        seen.append(conn.execute("SHOW max_parallel_maintenance_workers").fetchone()[0])

    pg.load_and_apply_post_data(dsn, schema, load, jobs=jobs)
    assert seen == [workers if workers is not None else default[0]]
