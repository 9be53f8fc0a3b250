"""Cached deployments of older Letta releases (the release matrix), built by each release's own server.

For every release of :data:`MATRIX` the build takes that release's own venv (pinned by its sdist's
``uv.lock``, :func:`lifeboat.sandbox.letta_env.ensure_letta_env`), lays out a database like
``init.sql``, runs *that release's* ``alembic upgrade head``, boots *that release's* server against
the fake LLM, fills it through its REST API (:mod:`lifeboat.sandbox.release_populate`), records
what the API shows (``api_view``), stops the server and stores a custom-format dump plus
``facts.json`` under ``<cache>/letta-release-<version>-b<builder>-<flavor>/``. Loading a copy into a
new database takes about a second (:func:`load_release`).

Facts keys: ``letta_version``, ``flavor``, ``builder``, ``alembic_revision``, ``pg_server_version``,
``build_seconds``, ``phase_seconds``, ``agents`` (``[{id, name, agent_type}]`` from the database,
sleeptime sibling included), ``agent_ids`` (main agents by name), ``shared_block_id``,
``folder`` (``{id, name, file_id, file_name}``), ``sleeptime`` (``{agent_id, sibling_id,
group_id}`` or null), ``api_view`` (see :func:`release_populate.api_view`), ``counts``.

0.16.8 is not built here: the large deployment of :mod:`lifeboat.sandbox.deployment` serves it.

``python -m lifeboat.sandbox.release_deployment [--flavor pg18] [VERSION ...]`` builds the
missing entries in parallel (one process per release) and prints how long each took.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import SandboxError
from lifeboat.sandbox import release_populate as pop
from lifeboat.sandbox.deployment import (
    CachedDeployment,
    LettaDatabase,
    dump_database,
    load_deployment,
    table_counts,
)
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_cache import ensure_entry
from lifeboat.sandbox.letta_env import ENV_BUILDER_VERSION, ensure_letta_env
from lifeboat.sandbox.letta_schema import alembic_revision, create_letta_database, migrate
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster, default_flavor, start_cluster


@dataclass(frozen=True)
class ReleaseSpec:
    """One older Letta release of the test matrix."""

    version: str
    head: str  # alembic head of the release's own migrations (checked at build)
    sleeptime: bool = True  # enable_sleeptime at agent creation


#: The older releases the sandbox can deploy (0.15.x shares 0.14.0's schema).
MATRIX: dict[str, ReleaseSpec] = {
    spec.version: spec
    for spec in (
        ReleaseSpec("0.11.7", "ddb69be34a72"),
        ReleaseSpec("0.14.0", "b1c2d3e4f5a6"),
        ReleaseSpec("0.16.0", "d0880aae6cee"),
    )
}
#: Bump when the populated content or the build procedure changes.
RELEASE_BUILDER_VERSION = 1
BUILDER = f"{ENV_BUILDER_VERSION}.{RELEASE_BUILDER_VERSION}"
SOURCE_DB = "letta"


def release_spec(version: str) -> ReleaseSpec:
    try:
        return MATRIX[version]
    except KeyError:
        raise SandboxError(f"Letta {version} is not in the release matrix ({', '.join(MATRIX)})") from None


def release_entry_name(version: str, flavor: str) -> str:
    return f"letta-release-{version}-b{BUILDER}-{flavor}"


def ensure_release(version: str, flavor: str | None = None) -> CachedDeployment:
    """The cached deployment of ``version`` for ``flavor``, building it first (a few minutes)."""
    spec = release_spec(version)
    flavor = flavor or default_flavor()
    root = ensure_entry(release_entry_name(version, flavor), lambda tmp: build_release(spec, flavor, tmp))
    return CachedDeployment(root, flavor)


def load_release(cluster: Cluster, dbname: str, version: str) -> LettaDatabase:
    """A new database ``dbname`` on ``cluster`` holding the cached deployment of ``version``."""
    return load_deployment(cluster, dbname, ensure_release(version, cluster.flavor))


# -- building ---------------------------------------------------------------------------------------
def build_release(spec: ReleaseSpec, flavor: str, dest: Path) -> dict[str, Any]:
    """Build ``spec``'s deployment on a throwaway cluster; write ``letta.dump`` and ``facts.json``."""
    started = time.monotonic()
    phases: dict[str, float] = {}
    env = ensure_letta_env(spec.version)
    phases["venv"] = round(time.monotonic() - started, 2)
    with start_cluster(flavor) as cluster:
        mark = time.monotonic()
        dsn = create_letta_database(cluster, SOURCE_DB)
        migrate(env, dsn)
        revision = alembic_revision(dsn)
        if revision != spec.head:
            raise SandboxError(f"Letta {spec.version}'s migrations reached {revision}, expected {spec.head}")
        phases["migrations"] = round(time.monotonic() - mark, 2)
        admin_dsn = cluster.dsn(SOURCE_DB)
        with FakeLLM() as llm:
            server = LettaServer(dsn, llm=llm, env=env)
            try:
                mark = time.monotonic()
                server.start()
                phases["server_boot"] = round(time.monotonic() - mark, 2)
                raw = pop.populate(server, sleeptime=spec.sleeptime, quiet=lambda: _quiet(admin_dsn))
                view = pop.api_view(server)
            except SandboxError as exc:
                raise SandboxError(f"{exc} (server log tail: {server.log_tail(1)})") from exc
            finally:
                server.cleanup()
        phases.update(raw["timings"])
        facts = _facts(admin_dsn, raw, spec)
        facts.update(
            {
                "api_view": view,
                "flavor": flavor,
                "builder": BUILDER,
                "letta_version": spec.version,
                "phase_seconds": phases,
                "build_seconds": round(time.monotonic() - started, 1),
            }
        )
        dump_database(cluster, SOURCE_DB, dest / "letta.dump")
    (dest / "facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    return facts


def _quiet(admin_dsn: str) -> bool:
    """No run/job is active (sleeptime runs and file processing happen in the background)."""
    with psycopg.connect(admin_dsn) as conn:
        table = "runs" if _has_table(conn, "runs") else "jobs"
        query = sql.SQL("SELECT count(*) FROM {} WHERE status IN ('created', 'running', 'pending')")
        row = conn.execute(query.format(sql.Identifier(table))).fetchone()
    return row is not None and row[0] == 0


def _has_table(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"letta.{name}",)).fetchone() == (True,)


def _facts(admin_dsn: str, raw: dict[str, Any], spec: ReleaseSpec) -> dict[str, Any]:
    with psycopg.connect(admin_dsn) as conn:
        agents = [
            {"id": r[0], "name": r[1], "agent_type": r[2]}
            for r in conn.execute("SELECT id, name, agent_type FROM agents ORDER BY name")
        ]
        sleeptime = None
        if spec.sleeptime:
            main = raw["agent_ids"][pop.agent_name(pop.SLEEPTIME_AGENT)]
            rows = conn.execute(
                "SELECT g.id, ga.agent_id FROM groups g JOIN groups_agents ga ON ga.group_id = g.id "
                "WHERE g.manager_type = 'sleeptime' AND g.manager_agent_id = %s",
                (main,),
            ).fetchall()
            if len(rows) != 1:
                raise SandboxError(f"expected one sleeptime sibling of {main}, found {len(rows)}")
            sleeptime = {"agent_id": main, "sibling_id": rows[0][1], "group_id": rows[0][0]}
        server_version = conn.execute("SHOW server_version").fetchone()
        counts = table_counts(conn)
    return {
        "alembic_revision": alembic_revision(admin_dsn),
        "pg_server_version": server_version[0] if server_version else None,
        "agents": agents,
        "agent_ids": raw["agent_ids"],
        "shared_block_id": raw["shared_block_id"],
        "folder": raw["folder"],
        "sleeptime": sleeptime,
        "counts": counts,
    }


def main(argv: list[str] | None = None) -> int:
    """Build the given releases (default: the whole matrix) in parallel and print their timings."""
    args = list(sys.argv[1:] if argv is None else argv)
    flavor = default_flavor()
    if args[:1] == ["--flavor"] and len(args) >= 2:
        flavor, args = args[1], args[2:]
    versions = args or list(MATRIX)

    def one(version: str) -> str:
        started = time.monotonic()
        cached = ensure_release(version, flavor)
        facts = cached.facts
        return (
            f"{version} ({flavor}): {cached.root} — {time.monotonic() - started:.1f} s now, "
            f"built in {facts['build_seconds']} s {facts['phase_seconds']}"
        )

    with ThreadPoolExecutor(len(versions)) as pool:
        for line in pool.map(one, versions):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
