"""The cached Letta venv is the production environment: the release's lock, not a fresh resolve."""

from __future__ import annotations

import subprocess

from lifeboat.sandbox.letta_env import LETTA_VERSION, ensure_letta_env


def test_letta_env_matches_the_release_lock() -> None:
    env = ensure_letta_env()
    pins = (env.root / "requirements.txt").read_text()
    assert f"letta=={LETTA_VERSION}" in pins and "asyncpg==" in pins and "pg8000==" in pins
    probe = (
        "from importlib.metadata import version as v; "
        "print(v('letta'), v('sqlalchemy'), v('asyncpg'), v('pgvector'), v('redis'))"
    )
    out = subprocess.run(
        [str(env.python), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == LETTA_VERSION
    assert out[1] == "2.0.43"  # the lock's SQLAlchemy; a plain `pip install letta` resolves 2.1
    for name in ("alembic", "alembic.ini", "init.sql", "compose.yaml", "uv.lock"):
        assert (env.src / name).exists()
    assert not (env.src / "letta").exists()  # would shadow the wheel (alembic.ini prepends '.')
