"""A Letta database laid out like production: init.sql's steps, then Letta's own migrations.

``init.sql`` (run by the postgres image) gives: role ``letta`` (not a superuser) owning database
``letta``, a schema named ``letta`` owned by it, the database-level ``search_path`` set to that
schema, ``vector`` installed *into* it, and no ``public`` schema. ``alembic upgrade head`` from
the sdist then creates the tables, the ``message_seq_id`` sequence and ``alembic_version``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import psycopg
from psycopg import sql

from lifeboat.errors import SandboxError
from lifeboat.sandbox.letta_env import LettaEnv
from lifeboat.sandbox.postgres import Cluster

#: alembic head of Letta 0.16.7 / 0.16.8.
HEAD_REVISION = "1c28e167b74f"
LETTA_ROLE = "letta"
LETTA_PASSWORD = "letta"
LETTA_SCHEMA = "letta"


def ensure_letta_role(cluster: Cluster, role: str = LETTA_ROLE, password: str = LETTA_PASSWORD) -> None:
    """Create the application role (LOGIN, not superuser) unless it exists."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )


def create_letta_database(
    cluster: Cluster, dbname: str, *, role: str = LETTA_ROLE, schema: str = LETTA_SCHEMA
) -> str:
    """A new, empty database with init.sql's layout; returns its DSN as ``role``."""
    ensure_letta_role(cluster, role)
    cluster.create_database(dbname, owner=role)
    statements: list[sql.Composed | sql.SQL] = [
        sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), sql.Identifier(role)),
        sql.SQL("ALTER DATABASE {} SET search_path TO {}").format(
            sql.Identifier(dbname), sql.Identifier(schema)
        ),
        sql.SQL("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA {}").format(sql.Identifier(schema)),
        sql.SQL("DROP SCHEMA IF EXISTS public CASCADE"),
    ]
    with psycopg.connect(cluster.dsn(dbname), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    return cluster.dsn(dbname, role, LETTA_PASSWORD)


def migrate(env: LettaEnv, dsn: str, revision: str = "head") -> None:
    """``alembic upgrade <revision>`` from the sdist, in the Letta venv, as Letta's startup.sh does.

    ``dsn`` must be a plain ``postgresql://`` URI without ``sslmode`` (alembic's pg8000 driver
    rejects it).
    """
    with tempfile.TemporaryDirectory(prefix="lifeboat-alembic-home-") as home:
        env_vars = letta_process_env(home, dsn)
        try:
            subprocess.run(
                env.alembic_command("upgrade", revision),
                cwd=env.src,
                env=env_vars,
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.CalledProcessError as exc:
            lines = (exc.stderr or exc.stdout or "").strip().splitlines() or ["no output"]
            raise SandboxError(f"alembic upgrade {revision} failed: {lines[-1]}") from exc


def alembic_revision(dsn: str) -> str | None:
    """The database's ``alembic_version``, or None when the table is missing/empty."""
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else str(row[0])


#: Provider credentials the server would pick up from the environment; never pass them through.
_PROVIDER_ENV_PREFIXES = (
    "OPENAI_", "ANTHROPIC_", "GROQ_", "GEMINI_", "GOOGLE_", "AZURE_", "OLLAMA_", "VLLM_", "OPENLLM_",
    "MISTRAL_", "TOGETHER_", "DEEPSEEK_", "XAI_", "BEDROCK_", "AWS_", "E2B_", "MODAL_", "TAVILY_",
    "EXA_", "COMPOSIO_", "LMSTUDIO_", "OPENROUTER_", "CLICKHOUSE_", "PINECONE_", "LETTA_",
)  # fmt: skip


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def letta_process_env(home: str, dsn: str) -> dict[str, str]:
    """A scrubbed environment for a Letta process: own HOME, the DSN, no inherited provider keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PROVIDER_ENV_PREFIXES)}
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", *_PROXY_VARS):
        env.pop(key, None)
        env.pop(key.lower(), None)
    env.update({"HOME": home, "LETTA_PG_URI": dsn, "PYTHONUNBUFFERED": "1"})
    return env
