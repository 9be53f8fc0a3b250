"""Lifeboat reads the settings Letta reads, with flag > env > config file precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat import settings
from lifeboat.errors import UsageError


def test_letta_pg_uri_wins_and_sqlalchemy_drivers_are_accepted() -> None:
    env = {"LETTA_PG_URI": "postgresql+asyncpg://u:p@db:5433/letta", "LETTA_PG_HOST": "ignored"}
    assert settings.letta_pg_uri(env) == "postgresql://u:p@db:5433/letta"
    assert settings.letta_pg_uri({"letta_pg_uri": "postgres://x@h/d"}) == "postgresql://x@h/d"


def test_five_letta_pg_variables_build_the_uri_with_quoting() -> None:
    env = {"LETTA_PG_DB": "letta", "LETTA_PG_USER": "letta", "LETTA_PG_PASSWORD": "p@ss/word",
           "LETTA_PG_HOST": "letta-db", "LETTA_PG_PORT": "5432"}  # fmt: skip
    assert settings.letta_pg_uri(env) == "postgresql://letta:p%40ss%2Fword@letta-db:5432/letta"


def test_default_is_letta_default() -> None:
    assert settings.database_setting(None, {}, {}) == settings.DatabaseSetting(
        "postgresql://letta:letta@localhost:5432/letta", "default"
    )


def test_letta_pg_db_alone_takes_letta_defaults_for_the_rest() -> None:
    chosen = settings.database_setting(None, {"LETTA_PG_DB": "only-one"}, {})
    assert chosen.dsn == "postgresql://letta:letta@localhost:5432/only-one"
    assert chosen.source.startswith("LETTA_PG_DB")


def test_libpq_variables_fill_what_letta_variables_leave_unset() -> None:
    env = {"PGHOST": "/var/run/postgresql", "PGPORT": "6543", "PGUSER": "ops", "PGDATABASE": "agents",
           "LETTA_PG_PORT": "5433", "PGPASSWORD": "from-libpq"}  # fmt: skip
    chosen = settings.database_setting(None, env, {})
    # The password stays with libpq (PGPASSWORD/PGPASSFILE): never copied into the DSN.
    assert chosen.dsn == "postgresql://ops@%2Fvar%2Frun%2Fpostgresql:5433/agents"
    assert chosen.source == "PGHOST, LETTA_PG_PORT, PGUSER, PGDATABASE (other fields: Letta's defaults)"
    assert "from-libpq" not in chosen.dsn
    passfile_only = settings.database_setting(None, {"PGUSER": "ops", "PGPASSFILE": "/x"}, {})
    assert passfile_only.dsn == "postgresql://ops@localhost:5432/letta"


def test_database_precedence_flag_uri_env_config_default() -> None:
    config = {"db": "postgresql://cfg@cfghost/cfgdb"}
    assert settings.database_setting("postgres://f@h/d", {"LETTA_PG_URI": "postgresql://u@h/x"}, config) == (
        settings.DatabaseSetting("postgresql://f@h/d", "--db")
    )
    assert (
        settings.database_setting(None, {"LETTA_PG_URI": "postgresql://u@h/x"}, config).source
        == "LETTA_PG_URI"
    )
    assert (
        settings.database_setting(None, {"PGHOST": "h"}, config).dsn
        == "postgresql://letta:letta@h:5432/letta"
    )
    from_config = settings.database_setting(None, {}, config)
    assert from_config.dsn == "postgresql://cfg@cfghost/cfgdb"
    assert from_config.source.startswith("config file")
    assert settings.database_setting(None, {"pghost": "ignored"}, {}).source == "default"


def test_redis_settings() -> None:
    assert settings.letta_redis({}) is None
    assert settings.letta_redis({"LETTA_REDIS_HOST": "r"}) == settings.RedisTarget("r", 6379)
    assert settings.letta_redis({"LETTA_REDIS_HOST": "r", "LETTA_REDIS_PORT": "7000"}).port == 7000  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        settings.letta_redis({"LETTA_REDIS_HOST": "r", "LETTA_REDIS_PORT": "x"})


def test_repository_and_passphrase_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"repository": "/from/config", "password_file": str(tmp_path / "cfgpass")}
    (tmp_path / "cfgpass").write_text("from-config\n")
    (tmp_path / "flagpass").write_text("from-flag\n")
    monkeypatch.delenv("LIFEBOAT_REPOSITORY", raising=False)
    monkeypatch.delenv("LIFEBOAT_PASSWORD", raising=False)
    monkeypatch.delenv("LIFEBOAT_PASSWORD_FILE", raising=False)
    assert settings.repository_url(None, config) == "/from/config"
    monkeypatch.setenv("LIFEBOAT_REPOSITORY", "/from/env")
    assert settings.repository_url(None, config) == "/from/env"
    assert settings.repository_url("/from/flag", config) == "/from/flag"
    assert settings.passphrase(None, config=config, prompt=False) == "from-config"
    assert settings.passphrase(tmp_path / "flagpass", config=config, prompt=False) == "from-flag"
    monkeypatch.setenv("LIFEBOAT_PASSWORD", "from-env")
    assert settings.passphrase(None, config={}, prompt=False) == "from-env"
    assert settings.passphrase(None, config={}, prompt=False) == "from-env"
    monkeypatch.delenv("LIFEBOAT_PASSWORD")
    assert settings.passphrase(None, config={}, prompt=False) is None
    with pytest.raises(UsageError, match="no repository"):
        monkeypatch.delenv("LIFEBOAT_REPOSITORY")
        settings.repository_url(None, {})
    with pytest.raises(UsageError, match="cannot read password file"):
        settings.passphrase(tmp_path / "missing", config={}, prompt=False)


def test_config_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("repository = [unclosed")
    with pytest.raises(UsageError, match="cannot read config file"):
        settings.load_config(bad)
