"""Connections fail with one clear line; server facts."""

from __future__ import annotations

import psycopg
import pytest

from lifeboat import pg
from lifeboat.errors import DatabaseError
from lifeboat.sandbox.postgres import Cluster, free_port


def test_unreachable_port_is_one_line() -> None:
    dsn = f"postgresql://someone:secret@127.0.0.1:{free_port()}/db"
    with pytest.raises(DatabaseError) as caught:
        pg.connect(dsn)
    message = str(caught.value)
    assert "\n" not in message and "secret" not in message
    assert message.startswith(
        f"cannot connect to PostgreSQL at someone@127.0.0.1:{dsn.split(':')[3].split('/')[0]}/db"
    )
    assert "refused" in message.lower()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_missing_database_and_role_say_so(pg_cluster: Cluster) -> None:
    with pytest.raises(DatabaseError, match='database "nope" does not exist'):
        pg.connect(pg_cluster.dsn("nope"))
    with pytest.raises(DatabaseError, match='role "ghost" does not exist'):
        pg.connect(pg_cluster.dsn("postgres", "ghost"))


def test_bad_connection_string() -> None:
    with pytest.raises(DatabaseError, match="cannot connect"):
        pg.connect("host=127.0.0.1 nonsense_option=1")


def test_server_info(pg_cluster: Cluster) -> None:
    with pg.connect(pg_cluster.dsn()) as conn:
        info = pg.server_info(conn)
        assert info.major == pg_cluster.major and info.is_superuser and info.can_create_db
        assert info.database == "postgres" and info.user == "postgres"
        conn.execute("DROP ROLE IF EXISTS plain_user")
        conn.execute("CREATE ROLE plain_user LOGIN")
    with pg.connect(pg_cluster.dsn("postgres", "plain_user")) as conn:
        info = pg.server_info(conn)
        assert not info.is_superuser and not info.can_create_db


def test_with_database_keeps_credentials() -> None:
    dsn = pg.with_database("postgresql://u:p@h:5433/a?sslmode=disable", "b")
    assert "dbname=b" in dsn and "password=p" in dsn and "port=5433" in dsn and "sslmode=disable" in dsn
    assert pg.describe_target(dsn) == "u@h:5433/b"


def test_sessions_set_their_limits_and_read_in_their_own_backend_on_18(
    pg18_cluster: Cluster, pg16_cluster: Cluster
) -> None:
    """Every session lifts the server's timeouts; on PostgreSQL 18 with I/O workers it also reads
    without them (effective_io_concurrency 0), and changes nothing of the kind before 18."""
    names = ("io_method", "effective_io_concurrency", "statement_timeout", "transaction_timeout")
    with pg.connect(pg18_cluster.dsn()) as conn:
        assert [_show(conn, name) for name in names] == ["worker", "0", "0", "0"]
    with pg.connect(pg16_cluster.dsn()) as conn:
        default = conn.execute(
            "SELECT boot_val FROM pg_settings WHERE name = 'effective_io_concurrency'"
        ).fetchone()
        assert default is not None and _show(conn, "effective_io_concurrency") == default[0] != "0"


def _show(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])
