"""Capture → apply → COPY round trips of a Letta-like database, same major and across majors."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from lifeboat.sandbox.postgres import Cluster

from .letta_like import create_letta_like_database, ensure_roles
from .roundtrip import newest_pg_dump, normalized_schema_dump, restore, table_digests

_names = itertools.count()


def _clusters(request: pytest.FixtureRequest, source: str, target: str) -> tuple[Cluster, Cluster]:
    return request.getfixturevalue(f"{source}_cluster"), request.getfixturevalue(f"{target}_cluster")


@pytest.mark.parametrize(
    "source,target", [("pg18", "pg18"), ("pg16", "pg16"), ("pg16", "pg18"), ("pg18", "pg16")]
)
def test_letta_like_database_round_trips(request: pytest.FixtureRequest, source: str, target: str) -> None:
    source_cluster, target_cluster = _clusters(request, source, target)
    n = next(_names)
    source_db, target_db = f"lettasrc{n}", f"lettadst{n}"
    source_dsn = create_letta_like_database(source_cluster, source_db)
    ensure_roles(target_cluster)
    with psycopg.connect(source_dsn, autocommit=True) as conn:  # advance the sequence past the data
        conn.execute("SELECT nextval('message_seq_id') FROM generate_series(1, 5)")

    schema, report = restore(source_dsn, target_cluster, target_db)

    assert report.missing_roles == set()
    assert report.skipped == []
    assert {key for key in report.seconds if key.startswith("load:")} == {
        f"load:{t.qualified}" for t in schema.tables
    }
    target_dsn = target_cluster.dsn(target_db, "letta")
    assert table_digests(target_dsn) == table_digests(source_dsn)
    pg_dump = newest_pg_dump(source_cluster, target_cluster)
    older_target = target_cluster.major < source_cluster.major
    assert normalized_schema_dump(
        pg_dump, target_dsn, drop_not_null_names=older_target
    ) == normalized_schema_dump(pg_dump, source_dsn, drop_not_null_names=older_target)
    with psycopg.connect(target_dsn) as conn:
        assert conn.execute("SHOW search_path").fetchone() == (source_db,)
        assert conn.execute("SELECT nextval('message_seq_id')").fetchone() == (2006,)
        # the application's unqualified SQL works, including the vector type and defaults
        conn.execute("INSERT INTO messages (id, agent_id, role) VALUES ('message-new', 'agent-1', 'user')")
        conn.execute("SELECT embedding <-> embedding FROM archival_passages LIMIT 1")
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'").fetchone() == (0,)
    assert {t.name for t in schema.tables} >= {"messages", "blocks_agents", "archival_passages"}
