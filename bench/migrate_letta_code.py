"""Benchmark: `lifeboat migrate --to letta-code` of every agent of the synthetic deployment, from a
snapshot, next to Letta's own REST export (`GET /v1/agents/{id}/export`, sequential) of the same
agents, measured in the same run on the same database.

    .venv/bin/python bench/migrate_letta_code.py --agents 5000 --output results.json

Each side runs as its own process; peak RSS is the migrate process's ``ru_maxrss`` (the largest
single process: the migration forks worker processes), and ``peak_pss_tree_mb`` the sampled peak
of the process tree's summed proportional set size (shared pages split among the processes). The export
baseline runs against the real Letta 0.16.8 server started on the generated database
(``--export-agents N`` exports the first N agents only and reports the per-agent rate).
Afterwards the real Letta Code lists the migrated agents, to show the output is usable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from backup_restore import LIFEBOAT, build, machine, timed  # noqa: E402
from synthetic import Scale  # noqa: E402

from lifeboat.sandbox.letta_code_env import ensure_letta_code_env  # noqa: E402
from lifeboat.sandbox.letta_server import LettaServer  # noqa: E402
from lifeboat.sandbox.postgres import start_cluster  # noqa: E402

#: Columns the synthetic generator leaves NULL but the Letta server cannot load (its pydantic
#: models require them); filled with Letta's own defaults before the server reads the agents.
LETTA_DEFAULTS = ("UPDATE letta.tools SET return_char_limit = 50000 WHERE return_char_limit IS NULL",)


def fill_letta_defaults(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in LETTA_DEFAULTS:
            conn.execute(statement)


def rest_export(dsn: str, agent_ids: list[str]) -> dict[str, Any]:
    """Letta's own export of each agent, one request after the other (as its API offers it)."""
    with LettaServer(dsn) as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
        started = time.monotonic()
        total = 0
        for agent_id in agent_ids:
            response = client.get(f"/v1/agents/{agent_id}/export")
            if response.status_code != 200:
                raise SystemExit(
                    f"export of {agent_id}: {response.status_code} {response.text[:500]}\n{server.log_tail(60)}"
                )
            total += len(response.content)
        seconds = time.monotonic() - started
    return {
        "agents": len(agent_ids),
        "seconds": round(seconds, 2),
        "ms_per_agent": round(1000 * seconds / max(1, len(agent_ids)), 1),
        "bytes": total,
    }


def tree_pss_kb(pid: int) -> int:
    """Proportional set size of a process and its descendants (KB): pages shared between the
    forked processes are split among them, so the sum is the memory the tree really holds."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError):
        return total
    return total + sum(tree_pss_kb(int(child)) for child in children)


def timed_tree(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command: wall seconds, the largest single process's peak RSS (``ru_maxrss``: the
    migration forks worker processes), the peak of the process tree's summed PSS (sampled every 0.2 s),
    and its JSON output."""
    peak = 0
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, tree_pss_kb(process.pid))
            time.sleep(0.2)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        printed, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {stderr[-2000:]}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_pss_tree_mb": round(peak / 1024, 1),
        "output": json.loads(printed),
    }


def letta_code_lists(backend: Path) -> dict[str, Any]:
    env = ensure_letta_code_env()
    with tempfile.TemporaryDirectory() as home:
        started = time.monotonic()
        done = env.run(
            "agents", "list", "--limit", "100000", home=Path(home), backend_dir=backend, timeout=900
        )
        seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"letta agents list failed: {done.stderr[-2000:]}")
    return {
        "version": env.version_line(),
        "agents_listed": len(json.loads(done.stdout)["items"]),
        "seconds": round(seconds, 2),
    }


def run(scale: Scale, workdir: Path, export_agents: int | None) -> dict[str, Any]:
    env = {**os.environ, "LIFEBOAT_PASSWORD": "bench-passphrase"}
    results: dict[str, Any] = {"machine": machine(), "scale": scale.__dict__}
    with start_cluster("pg18", base_dir=workdir, durable=True) as cluster:
        started = time.monotonic()
        dsn, counts = build(cluster, scale)
        results["dataset"] = counts | {"build_seconds": round(time.monotonic() - started, 1)}
        repo = str(workdir / "repo")
        subprocess.run([LIFEBOAT, "init", "--repo", repo], env=env, check=True, capture_output=True)
        r = results["runs"] = {}
        r["lifeboat_backup"] = timed([LIFEBOAT, "backup", "--repo", repo, "--db", dsn], env)
        backend = workdir / "backend"
        migrate = timed_tree(
            [LIFEBOAT, "--json", "migrate", str(backend), "--repo", repo, "--snapshot", "latest", "--all"],
            env,
        )
        report = migrate.pop("output")
        agents = report["agents"]
        migrate["agents"] = len(agents)
        migrate["ms_per_agent"] = round(1000 * migrate["seconds"] / max(1, len(agents)), 2)
        migrate["messages_written"] = sum(a["counts"]["messages"]["written"] for a in agents)
        migrate["backend_bytes"] = sum(f.stat().st_size for f in backend.rglob("*") if f.is_file())
        r["lifeboat_migrate"] = migrate
        with psycopg.connect(dsn) as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM letta.agents ORDER BY id")]
        fill_letta_defaults(dsn)
        r["letta_rest_export"] = rest_export(dsn, ids[: export_agents or len(ids)])
        r["letta_code"] = letta_code_lists(backend)
    per_agent_export = r["letta_rest_export"]["ms_per_agent"] / 1000
    r["speedup_vs_rest_export"] = round(
        per_agent_export * r["lifeboat_migrate"]["agents"] / r["lifeboat_migrate"]["seconds"], 1
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=Scale.agents)
    parser.add_argument("--messages-per-agent", type=int, default=Scale.messages_per_agent)
    parser.add_argument("--export-agents", type=int, default=None, help="export only the first N agents")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    scale = Scale(agents=args.agents, messages_per_agent=args.messages_per_agent)
    with tempfile.TemporaryDirectory(prefix="lifeboat-bench-migrate-", dir=args.workdir) as tmp:
        results = run(scale, Path(tmp), args.export_agents)
        text = json.dumps(results, indent=2)  # written before the (minutes long) cleanup
        if args.output:
            args.output.write_text(text + "\n")
        print(text, flush=True)


if __name__ == "__main__":
    main()
