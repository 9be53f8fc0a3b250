"""Database management helpers used by restores."""

from __future__ import annotations

import psycopg
import pytest

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.sandbox.postgres import Cluster


def test_create_rename_drop_with_sessions_open(pg_cluster: Cluster) -> None:
    name = pg.temporary_database_name("letta")
    assert name.startswith("letta_lifeboat_restore_") and len(name.encode()) <= 63
    with pg.connect(pg_cluster.dsn()) as admin:
        pg.create_database(admin, name)
        assert pg.database_exists(admin, name)
        with pytest.raises(DatabaseError, match="already exists"):
            pg.create_database(admin, name)
        squatter = psycopg.connect(pg_cluster.dsn(name))  # an application still connected
        pg.rename_database(admin, name, name + "_renamed")
        assert not pg.database_exists(admin, name) and pg.database_exists(admin, name + "_renamed")
        assert squatter.closed or squatter.broken or _is_dead(squatter)
        with psycopg.connect(pg_cluster.dsn(name + "_renamed")):  # connections allowed again
            pass
        holder = psycopg.connect(pg_cluster.dsn(name + "_renamed"))
        pg.drop_database(admin, name + "_renamed")
        assert not pg.database_exists(admin, name + "_renamed")
        holder.close()
        pg.drop_database(admin, "never_existed")
        with pytest.raises(DatabaseError, match="does not exist"):
            pg.drop_database(admin, "never_existed", missing_ok=False)


def _is_dead(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_long_names_are_cut_to_fit() -> None:
    name = pg.temporary_database_name("é" * 60, "drill")
    assert len(name.encode()) <= 63 and "_lifeboat_drill_" in name
