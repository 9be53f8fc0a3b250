"""The cached, populated Letta 0.16.8 deployment every test, demo and drill starts from.

Building it (minutes, once per PostgreSQL flavor) runs the real server on a throwaway cluster and
fills it through the REST API (:mod:`lifeboat.sandbox.letta_populate`), then stores a custom-format
``pg_dump`` of database ``letta`` (made with that cluster's own pg_dump) and a ``facts.json`` of
useful ids under ``<cache>/letta-deployment-<version>-b<builder>-<flavor>/``. Loading it into a
new database on any cluster of the same flavor takes seconds and leaves the production layout:
schema ``letta`` owned by role ``letta``, database-level ``search_path``, ``vector`` inside
``letta``, ``message_seq_id`` and ``alembic_version``.

Facts keys (``facts.json``):

* ``letta_version``, ``builder``, ``flavor``, ``pg_server_version``, ``alembic_revision``,
  ``build_seconds``, ``phase_seconds``;
* ``agents``: ``[{id, name, agent_type, tags}]`` (every agent row, sorted by name, sibling
  included) and ``agent_ids``: ``{name: id}``;
* ``sleeptime``: ``{agent_id, agent_name, sibling_id, sibling_name, group_id}``;
* ``shared_blocks``: ``[{id, label, agent_ids}]`` (the explicitly shared ``team``/``project``);
* ``custom_tool``: ``{id, name, agent_ids}``; ``identities``: ``[{id, identifier_key, name, agent_ids}]``;
* ``folder``: ``{id, name, file_id, file_name, agent_ids}``;
* ``secret``: ``{agent_id, key, value}``; ``conversation``: ``{agent_id, conversation_id}``;
* ``archival``: ``{rest_agent_ids, tool_agent_ids, passages}``;
* ``crashed``: ``[{agent_id, agent_name, run_id, run_status, pending_step_id, kind}]`` with kind
  ``first_call`` (blocking, no message persisted) or ``after_tool`` (streaming, memory insert
  persisted); ``crashed_run_ids``;
* ``counts``: ``{table: rows}`` for every table of schema ``letta``.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import SandboxError
from lifeboat.sandbox import letta_populate as pop
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_cache import cache_root, ensure_entry
from lifeboat.sandbox.letta_env import ENV_BUILDER_VERSION, LETTA_VERSION, ensure_letta_env
from lifeboat.sandbox.letta_schema import (
    HEAD_REVISION,
    LETTA_PASSWORD,
    LETTA_ROLE,
    LETTA_SCHEMA,
    alembic_revision,
    create_letta_database,
    ensure_letta_role,
    migrate,
)
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster, default_flavor, start_cluster
from lifeboat.sandbox.redis_server import RedisServer, redis_server_bin

#: Bump when the populated content or the dump procedure changes.
DEPLOYMENT_BUILDER_VERSION = 2
BUILDER = f"{ENV_BUILDER_VERSION}.{DEPLOYMENT_BUILDER_VERSION}"
DUMP_FILE = "letta.dump"
FACTS_FILE = "facts.json"
SOURCE_DB = "letta"


@dataclass(frozen=True)
class CachedDeployment:
    """A finished cache entry: the dump and its facts."""

    root: Path
    flavor: str

    @property
    def dump(self) -> Path:
        return self.root / DUMP_FILE

    @property
    def facts(self) -> dict[str, Any]:
        return dict(json.loads((self.root / FACTS_FILE).read_text()))


@dataclass
class LettaDatabase:
    """A database loaded from the cache on ``cluster``."""

    cluster: Cluster
    dbname: str
    facts: dict[str, Any]

    @property
    def dsn(self) -> str:
        """As the application role ``letta`` (what the Letta server uses)."""
        return self.cluster.dsn(self.dbname, LETTA_ROLE, LETTA_PASSWORD)

    @property
    def admin_dsn(self) -> str:
        """As the cluster's superuser."""
        return self.cluster.dsn(self.dbname)

    def drop(self) -> None:
        self.cluster.drop_database(self.dbname)


def deployment_entry_name(flavor: str) -> str:
    return f"letta-deployment-{LETTA_VERSION}-b{BUILDER}-{flavor}"


def cached_deployment_path(flavor: str | None = None) -> Path:
    """Where the entry lives (whether or not it is built yet)."""
    return cache_root() / deployment_entry_name(flavor or default_flavor())


def ensure_deployment(flavor: str | None = None) -> CachedDeployment:
    """The cached deployment for ``flavor``, building it first (a few minutes) when missing."""
    flavor = flavor or default_flavor()
    root = ensure_entry(deployment_entry_name(flavor), lambda tmp: build_deployment(flavor, tmp))
    return CachedDeployment(root, flavor)


# -- building ---------------------------------------------------------------------------------------
def build_deployment(flavor: str, dest: Path) -> dict[str, Any]:
    """Build the deployment on a throwaway ``flavor`` cluster; write the dump and facts into ``dest``."""
    started = time.monotonic()
    env = ensure_letta_env()
    with start_cluster(flavor) as cluster:
        dsn = create_letta_database(cluster, SOURCE_DB)
        migrate(env, dsn)
        raw = _populate_with_server(dsn, cluster.dsn(SOURCE_DB))
        facts = collect_facts(cluster.dsn(SOURCE_DB), raw)
        facts.update(
            {
                "flavor": flavor,
                "builder": BUILDER,
                "letta_version": LETTA_VERSION,
                "build_seconds": round(time.monotonic() - started, 1),
            }
        )
        dump_database(cluster, SOURCE_DB, dest / DUMP_FILE)
    (dest / FACTS_FILE).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    return facts


def _populate_with_server(dsn: str, admin_dsn: str) -> dict[str, Any]:
    redis = _maybe_redis()
    try:
        with FakeLLM() as llm:
            server = LettaServer(dsn, llm=llm, redis_port=redis.port if redis else None)
            try:
                server.start()
                return pop.populate(server, llm, admin_dsn)
            except SandboxError as exc:
                raise SandboxError(f"{exc} (server log tail: {server.log_tail(1)})") from exc
            finally:
                server.cleanup()
    finally:
        if redis is not None:
            redis.stop()


def _maybe_redis() -> RedisServer | None:
    """Build with Redis like production when redis-server is installed; without it otherwise."""
    try:
        redis_server_bin()
    except SandboxError:
        return None
    return RedisServer().start()


def dump_database(cluster: Cluster, dbname: str, path: Path) -> None:
    """Custom-format dump of the whole database with the cluster's own pg_dump."""
    _run_tool(
        [cluster.tool("pg_dump"), "--format=custom", "--file", str(path), "--dbname", cluster.dsn(dbname)]
    )


def _run_tool(args: list[str]) -> None:
    try:
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or "").strip().splitlines() or ["no output"]
        raise SandboxError(f"{Path(args[0]).name} failed: {lines[0]}") from exc


# -- facts ------------------------------------------------------------------------------------------
def _rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def collect_facts(admin_dsn: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Read back from the database what later tests need to know (ids, counts, crash leftovers)."""
    shared: pop.Shared = raw["shared"]
    with psycopg.connect(admin_dsn) as conn:
        agents = [
            {"id": r[0], "name": r[1], "agent_type": r[2], "tags": sorted(t for t in r[3] if t)}
            for r in _rows(
                conn,
                "SELECT a.id, a.name, a.agent_type, array_agg(t.tag) FROM agents a "
                "LEFT JOIN agents_tags t ON t.agent_id = a.id GROUP BY a.id ORDER BY a.name",
            )
        ]
        ids = {a["name"]: a["id"] for a in agents}

        def members(query: str, key: str) -> list[str]:
            return sorted(r[0] for r in _rows(conn, query, key))

        facts: dict[str, Any] = {
            "alembic_revision": alembic_revision(admin_dsn),
            "pg_server_version": _rows(conn, "SHOW server_version")[0][0],
            "agents": agents,
            "agent_ids": ids,
            "sleeptime": _sleeptime_facts(conn, ids),
            "shared_blocks": [
                {
                    "id": block_id,
                    "label": label,
                    "agent_ids": members("SELECT agent_id FROM blocks_agents WHERE block_id = %s", block_id),
                }
                for label, block_id in sorted(shared.blocks.items())
            ],
            "custom_tool": {
                "id": shared.tool_id,
                "name": pop.CUSTOM_TOOL_NAME,
                "agent_ids": members("SELECT agent_id FROM tools_agents WHERE tool_id = %s", shared.tool_id),
            },
            "identities": [
                {
                    **identity,
                    "agent_ids": members(
                        "SELECT agent_id FROM identities_agents WHERE identity_id = %s", identity["id"]
                    ),
                }
                for identity in shared.identities
            ],
            "folder": {
                "id": shared.folder_id,
                "name": pop.FOLDER_NAME,
                "file_id": shared.file_id,
                "file_name": pop.FILE_NAME,
                "agent_ids": members("SELECT agent_id FROM files_agents WHERE file_id = %s", shared.file_id),
            },
            "secret": {
                "agent_id": ids[pop.agent_name(pop.SECRET_AGENT)],
                "key": pop.SECRET_KEY,
                "value": pop.SECRET_VALUE,
            },
            "conversation": {
                "agent_id": ids[pop.agent_name(pop.CONVERSATION_AGENT)],
                "conversation_id": raw["conversation_id"],
            },
            "archival": {
                "rest_agent_ids": [ids[pop.agent_name(i)] for i in pop.REST_ARCHIVAL_AGENTS],
                "tool_agent_ids": [ids[pop.agent_name(i)] for i in pop.ARCHIVAL_TOOL_AGENTS],
                "passages": _rows(conn, "SELECT count(*) FROM archival_passages")[0][0],
            },
            "crashed": _crash_facts(conn, ids),
            "counts": table_counts(conn),
            "phase_seconds": raw["timings"],
        }
    facts["crashed_run_ids"] = [c["run_id"] for c in facts["crashed"]]
    return facts


def _sleeptime_facts(conn: psycopg.Connection[Any], ids: dict[str, str]) -> dict[str, Any]:
    name = pop.agent_name(pop.SLEEPTIME_AGENT)
    rows = _rows(
        conn,
        "SELECT g.id, ga.agent_id FROM groups g JOIN groups_agents ga ON ga.group_id = g.id "
        "WHERE g.manager_type = 'sleeptime' AND g.manager_agent_id = %s",
        ids[name],
    )
    if len(rows) != 1:
        raise SandboxError(f"expected one sleeptime group member for {name}, found {len(rows)}")
    group_id, sibling_id = rows[0]
    sibling_name = next(n for n, i in ids.items() if i == sibling_id)
    return {
        "agent_id": ids[name],
        "agent_name": name,
        "sibling_id": sibling_id,
        "sibling_name": sibling_name,
        "group_id": group_id,
    }


def _crash_facts(conn: psycopg.Connection[Any], ids: dict[str, str]) -> list[dict[str, Any]]:
    kinds = {
        ids[pop.agent_name(pop.CRASH_FIRST_CALL_AGENT)]: "first_call",
        ids[pop.agent_name(pop.CRASH_AFTER_TOOL_AGENT)]: "after_tool",
    }
    names = {i: n for n, i in ids.items()}
    crashed = []
    for run_id, agent_id, status, step_id in _rows(
        conn,
        "SELECT r.id, r.agent_id, r.status, s.id FROM runs r "
        "LEFT JOIN steps s ON s.run_id = r.id AND s.status = 'PENDING' "
        "WHERE r.status IN ('created', 'running') ORDER BY r.agent_id",
    ):
        crashed.append(
            {
                "agent_id": agent_id,
                "agent_name": names.get(agent_id),
                "run_id": run_id,
                "run_status": status,
                "pending_step_id": step_id,
                "kind": kinds.get(agent_id, "unexpected"),
            }
        )
    if sorted(c["kind"] for c in crashed) != ["after_tool", "first_call"]:
        raise SandboxError(
            f"the crash left unexpected runs: {[(c['agent_name'], c['run_status']) for c in crashed]}"
        )
    return crashed


def table_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    tables = [
        r[0] for r in _rows(conn, "SELECT tablename FROM pg_tables WHERE schemaname = %s", LETTA_SCHEMA)
    ]
    counts = {}
    for table in sorted(tables):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(LETTA_SCHEMA), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


# -- loading ----------------------------------------------------------------------------------------
def load_deployment(cluster: Cluster, dbname: str, cached: CachedDeployment | None = None) -> LettaDatabase:
    """A new database ``dbname`` on ``cluster`` holding the cached deployment (built if needed).

    Creates role ``letta`` if missing and the database with init.sql's database-level settings
    (owner, search_path, no ``public``); pg_restore then brings schema ``letta``, ``vector``
    inside it, every table, the sequences and ``alembic_version``.
    """
    cached = cached or ensure_deployment(cluster.flavor)
    if cached.flavor != cluster.flavor:
        raise SandboxError(f"deployment dump is {cached.flavor}, cluster is {cluster.flavor}")
    ensure_letta_role(cluster)
    cluster.create_database(dbname, owner=LETTA_ROLE)
    try:
        with psycopg.connect(cluster.dsn(dbname), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET search_path TO {}").format(
                    sql.Identifier(dbname), sql.Identifier(LETTA_SCHEMA)
                )
            )
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        _run_tool(
            [
                cluster.tool("pg_restore"), "--exit-on-error", "--single-transaction",
                "--dbname", cluster.dsn(dbname), str(cached.dump),
            ]
        )  # fmt: skip
    except BaseException:
        cluster.drop_database(dbname)
        raise
    database = LettaDatabase(cluster, dbname, cached.facts)
    revision = alembic_revision(database.admin_dsn)
    expected = database.facts.get("alembic_revision") or HEAD_REVISION
    if revision != expected:
        raise SandboxError(f"restored deployment has alembic revision {revision}, expected {expected}")
    return database


def main(argv: list[str] | None = None) -> None:
    """``python -m lifeboat.sandbox.deployment [pg18] [pg16]``: warm the cache (e.g. first CI step)."""
    import sys

    for flavor in (argv if argv is not None else sys.argv[1:]) or [default_flavor()]:
        started = time.monotonic()
        cached = ensure_deployment(flavor)
        print(f"{flavor}: {cached.root} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
