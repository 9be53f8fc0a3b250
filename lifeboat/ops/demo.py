"""The demo: the whole story on a throwaway deployment of the real Letta 0.16.8.

It builds (or loads from the cache) the sandbox deployment on a throwaway PostgreSQL cluster,
catalogs its agents, backs it up into an encrypted repository, drops the database, restores it,
verifies it, and has the real Letta server list the agents. It is a list of small phases sharing
a :class:`DemoContext`; each phase's wall time lands in ``timings``, its evidence in ``story``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lifeboat.letta.catalog import CATALOG_SQL, AgentEntry, catalog_from_rows
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import CachedDeployment, LettaDatabase, ensure_deployment, load_deployment
from lifeboat.sandbox.postgres import Cluster, default_flavor, start_cluster


class DemoResult(BaseModel):
    """What ``lifeboat demo`` reports (also its ``--json`` shape)."""

    flavor: str
    database: str
    dsn: str | None = None  # only when the cluster is kept
    agents: list[AgentEntry] = []
    facts: dict[str, Any] = {}
    timings: dict[str, float] = {}
    story: dict[str, Any] = {}  # backup / damage / restore / verify / server evidence


@dataclass
class DemoContext:
    """State shared by the phases; phases add what later ones need."""

    flavor: str
    keep: bool = False
    cached: CachedDeployment | None = None
    cluster: Cluster | None = None
    database: LettaDatabase | None = None
    agents: list[AgentEntry] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    story: dict[str, Any] = field(default_factory=dict)
    workdir: Path | None = None
    repo: Repository | None = None

    def require_database(self) -> LettaDatabase:
        assert self.database is not None, "phase order: load the deployment first"
        return self.database


Phase = Callable[[DemoContext], None]


def phase_deployment_cache(ctx: DemoContext) -> None:
    """Build the populated deployment once per flavor (minutes), or reuse the cached dump."""
    ctx.cached = ensure_deployment(ctx.flavor)


def phase_cluster(ctx: DemoContext) -> None:
    ctx.cluster = start_cluster(ctx.flavor, keep=ctx.keep)


def phase_load(ctx: DemoContext) -> None:
    assert ctx.cluster is not None and ctx.cached is not None
    ctx.database = load_deployment(ctx.cluster, "letta", ctx.cached)


def phase_catalog(ctx: DemoContext) -> None:
    ctx.agents = agent_catalog(ctx.require_database().admin_dsn)


DEMO_PASSPHRASE = "lifeboat-demo"  # a throwaway repository in a temp dir


def phase_backup(ctx: DemoContext) -> None:
    """An encrypted repository in a temp dir, and a hot backup of the live deployment."""
    from lifeboat.ops.backup import run_backup

    ctx.workdir = Path(tempfile.mkdtemp(prefix="lifeboat-demo-"))
    ctx.repo = Repository.init(ctx.workdir / "repo", DEMO_PASSPHRASE)
    result = run_backup(ctx.repo, ctx.require_database().admin_dsn, tags=["demo"])
    ctx.story["snapshot"] = result.summary()


def phase_damage(ctx: DemoContext) -> None:
    """The bad day: the database is gone."""
    database = ctx.require_database()
    database.cluster.drop_database(database.dbname)
    ctx.story["damage"] = f"dropped database {database.dbname}"


def phase_restore(ctx: DemoContext) -> None:
    from lifeboat.ops.restore import run_restore

    assert ctx.repo is not None
    database = ctx.require_database()
    result = run_restore(ctx.repo, "latest", database.admin_dsn)
    ctx.story["restore"] = result.summary()


def phase_verify(ctx: DemoContext) -> None:
    from lifeboat.ops.verify import verify_database

    report = verify_database(ctx.require_database().admin_dsn)
    restored = agent_catalog(ctx.require_database().admin_dsn)
    ctx.story["verify"] = {
        "ok": report.ok,
        "findings": report.summary,
        "catalog_identical": restored == ctx.agents,
    }


def phase_server(ctx: DemoContext) -> None:
    """The real Letta 0.16.8 server, started on the restored database, lists the same agents."""
    from lifeboat.sandbox.letta_server import LettaServer

    database = ctx.require_database()
    with LettaServer(database.dsn) as server:
        listed = server.get("/v1/agents/", limit=1000)
    ctx.story["server"] = {
        "agents_listed": len(listed),
        "same_agents": sorted(a["id"] for a in listed) == sorted(a.id for a in ctx.agents),
    }


PHASES: list[tuple[str, Phase]] = [
    ("deployment_cache", phase_deployment_cache),
    ("start_cluster", phase_cluster),
    ("load_deployment", phase_load),
    ("catalog", phase_catalog),
    ("backup", phase_backup),
    ("damage", phase_damage),
    ("restore", phase_restore),
    ("verify", phase_verify),
    ("server", phase_server),
]


def agent_catalog(dsn: str) -> list[AgentEntry]:
    """Every agent with its message/block/passage counts and last run status, by name."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(CATALOG_SQL).fetchall()
    return sorted(catalog_from_rows(rows), key=lambda entry: entry.name)


def run_demo(
    flavor: str | None = None,
    *,
    keep: bool = False,
    phases: Sequence[tuple[str, Phase]] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the demo phases in order; the throwaway cluster is removed at the end unless ``keep``."""
    ctx = DemoContext(flavor=flavor or default_flavor(), keep=keep)
    try:
        for name, phase in phases or PHASES:
            if on_phase is not None:
                on_phase(name)
            started = time.monotonic()
            phase(ctx)
            ctx.timings[name] = round(time.monotonic() - started, 2)
        return _result(ctx)
    finally:
        if ctx.cluster is not None and not keep:
            ctx.cluster.stop()
        if ctx.workdir is not None and not keep:
            shutil.rmtree(ctx.workdir, ignore_errors=True)


def _result(ctx: DemoContext) -> DemoResult:
    database = ctx.require_database()
    facts = database.facts
    return DemoResult(
        flavor=ctx.flavor,
        database=database.dbname,
        dsn=database.dsn if ctx.keep else None,
        agents=ctx.agents,
        facts={
            "sleeptime": facts.get("sleeptime"),
            "crashed": facts.get("crashed"),
            "build_seconds": facts.get("build_seconds"),
            "letta_version": facts.get("letta_version"),
        },
        timings=ctx.timings,
        story=ctx.story,
    )


def warm_cache(flavors: Sequence[str] | None = None) -> dict[str, float]:
    """Build the Letta venv and the deployment dumps (e.g. first CI step); seconds per flavor."""
    spent = {}
    for flavor in flavors or [default_flavor()]:
        started = time.monotonic()
        ensure_deployment(flavor)
        spent[flavor] = round(time.monotonic() - started, 1)
    return spent
