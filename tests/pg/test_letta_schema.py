"""The real migrated Letta 0.16.8 database (cached deployment) captured and re-applied with
lifeboat.pg alone: same rows, same schema as pg_dump sees it, same layout, across majors."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import psycopg
import pytest

from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import Cluster

from .letta_like import ensure_roles
from .roundtrip import newest_pg_dump, normalized_schema_dump, restore, table_digests

_names = itertools.count()


@pytest.mark.parametrize("source,target", [("pg18", "pg18"), ("pg16", "pg18"), ("pg18", "pg16")])
def test_real_letta_database_round_trips(
    request: pytest.FixtureRequest,
    letta_db_factory: Callable[[Cluster], LettaDatabase],
    source: str,
    target: str,
) -> None:
    source_cluster: Cluster = request.getfixturevalue(f"{source}_cluster")
    target_cluster: Cluster = request.getfixturevalue(f"{target}_cluster")
    letta = letta_db_factory(source_cluster)
    ensure_roles(target_cluster)
    target_db = f"letta_restored_{next(_names)}"

    schema, report = restore(letta.dsn, target_cluster, target_db)  # captured as role letta

    assert report.skipped == [] and report.missing_roles == set()
    assert len(schema.tables) == 49 and schema.schemas[0].name == "letta"
    target_dsn = target_cluster.dsn(target_db, "letta")
    try:
        assert table_digests(target_dsn) == table_digests(letta.dsn)
        pg_dump = newest_pg_dump(source_cluster, target_cluster)
        older_target = target_cluster.major < source_cluster.major
        assert normalized_schema_dump(pg_dump, target_dsn, drop_not_null_names=older_target) == (
            normalized_schema_dump(pg_dump, letta.dsn, drop_not_null_names=older_target)
        )
        with psycopg.connect(target_dsn) as conn:
            assert conn.execute("SHOW search_path").fetchone() == ("letta",)
            assert conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'"
            ).fetchone() == ("letta",)
            restored_next = conn.execute("SELECT nextval('message_seq_id')").fetchone()
        with psycopg.connect(letta.dsn) as conn:
            (max_sequence_id,) = conn.execute("SELECT max(sequence_id) FROM messages").fetchone()  # type: ignore[misc]
        assert restored_next is not None and restored_next[0] > max_sequence_id
    finally:
        target_cluster.drop_database(target_db)
