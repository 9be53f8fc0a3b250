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
    assert (
        settings.letta_pg_uri({"LETTA_PG_DB": "only-one"}) == "postgresql://letta:letta@localhost:5432/letta"
    )


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
