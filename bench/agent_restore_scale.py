"""One-agent restore at several deployment sizes, interleaved, optionally against another checkout.

    .venv/bin/python bench/agent_restore_scale.py setup --agents 2500 --state /tmp/a1.json
    .venv/bin/python bench/agent_restore_scale.py setup --agents 10000 --state /tmp/a4.json
    .venv/bin/python bench/agent_restore_scale.py run --state /tmp/a1.json --state /tmp/a4.json \\
        --code before=/tmp/base --code after=. --rounds 3 --output ar.json
    .venv/bin/python bench/agent_restore_scale.py drop --state /tmp/a1.json

``setup`` builds a durable PostgreSQL 18 cluster holding the synthetic deployment (bench/synthetic.py)
and one lifeboat backup of it, and keeps both (no ``pg_dump``: bench/restore_phases.py does that).
``run`` starts each cluster and, ``--rounds`` times, for every state and every ``--code`` checkout in
turn, runs ``lifeboat --json restore --repo R --agent ID --db DSN --force`` (the agent
bench/backup_restore.py restores: the 8th by id) as its own process with that checkout first on
``PYTHONPATH`` (its modules compiled to ``.pyc`` first, as an installed lifeboat is). Recorded per
restore: wall seconds, the process's user+system CPU and peak RSS (``wait4``), the server's CPU
(the postmaster's reaped backends), the operation's own seconds and read share (its JSON report),
and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402
from restore_phases import build_deployment, reattach, server_cpu  # noqa: E402

from lifeboat.sandbox.postgres import start_cluster  # noqa: E402

PYTHON = str(HERE.parent / ".venv" / "bin" / "python")
PASSPHRASE = "bench-passphrase"


def lifeboat(code: Path, *args: str) -> list[str]:
    return [
        PYTHON,
        "-P",  # not the working directory first: PYTHONPATH's checkout is the one run
        "-c",
        "import sys; sys.argv[0] = 'lifeboat'; from lifeboat.cli import main; main()",
        *args,
    ]


def code_env(code: Path) -> dict[str, str]:
    return {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, "PYTHONPATH": str(code.resolve())}


def setup(state: Path, agents: int, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = start_cluster("pg18", base_dir=workdir, durable=True, keep=True)
    try:
        repo = build_deployment(cluster, agents, partial(lifeboat, HERE.parent), code_env(HERE.parent))
    finally:
        cluster.stop()
    state.write_text(
        json.dumps(
            {
                "agents": agents,
                "data_dir": str(cluster.data_dir),
                "port": cluster.port,
                "repo": repo,
                "owner_uid": cluster._owner_uid,
            }
        )
    )


def compile_code(code: Path) -> None:
    """Compile the checkout's modules to .pyc, and check it is the lifeboat its commands import."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(code / "lifeboat")], env=env, check=True)
    where = subprocess.run(
        [PYTHON, "-P", "-c", "import lifeboat; print(lifeboat.__file__)"],
        env=code_env(code),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"{code}: its commands would import {where}")


def timed_restore(code: Path, state: dict[str, Any], dsn: str, agent: str, server: Any) -> dict[str, Any]:
    """One restore as its own process: wall seconds, its own CPU and peak RSS (``wait4``), the server's CPU."""
    command = lifeboat(
        code, "--json", "restore", "--repo", state["repo"], "--agent", agent, "--db", dsn, "--force"
    )
    load = os.getloadavg()[0]
    cpu_before = server()
    out = Path(f"/tmp/agent_restore_scale.{os.getpid()}.out")
    start = time.perf_counter()
    with out.open("wb") as sink:
        pid = os.posix_spawn(
            command[0], command, code_env(code), file_actions=[(os.POSIX_SPAWN_DUP2, sink.fileno(), 1)]
        )
        _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    text = out.read_text()
    out.unlink()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"restore failed: {text[-2000:]}")
    report = json.loads(text)
    return {
        "seconds": round(wall, 3),
        "cpu": round(usage.ru_utime + usage.ru_stime, 3),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
        "server_cpu": round(server() - cpu_before, 2),
        "operation_seconds": report.get("seconds"),
        "read_share": round(report["bytes_read"] / report["snapshot_bytes"], 5),
        "load": round(load, 2),
    }


def run(states: list[Path], codes: dict[str, Path], rounds: int, output: Path | None) -> None:
    for code in codes.values():
        compile_code(code)
    loaded = [json.loads(path.read_text()) for path in states]
    clusters = [reattach(state) for state in loaded]
    results: dict[str, list[dict[str, Any]]] = {}
    started: list[bool] = []
    try:
        agents = []
        for cluster in clusters:
            if (cluster.data_dir / "pgdata" / "postmaster.pid").exists():
                started.append(False)  # already running (left by an earlier command): left running
            else:
                cluster.start()
                started.append(True)
            with psycopg.connect(cluster.dsn("letta")) as conn:
                row = conn.execute("SELECT id FROM letta.agents ORDER BY id OFFSET 7 LIMIT 1").fetchone()
            agents.append(row[0])  # type: ignore[index]
        for round_no in range(rounds):
            for state, cluster, agent in zip(loaded, clusters, agents, strict=True):
                for name, code in codes.items():
                    got = timed_restore(
                        code, state, cluster.dsn("letta"), agent, lambda c=cluster: server_cpu(c)
                    )
                    key = f"{state['agents']} {name}"
                    results.setdefault(key, []).append(got)
                    print(f"round {round_no} {key}: {got}", flush=True)
    finally:
        for cluster, mine in zip(clusters, started, strict=False):
            if mine:
                cluster.stop()
    summary = {
        key: {field: statistics.median(r[field] for r in runs) for field in runs[0]}
        for key, runs in results.items()
    }
    for key, medians in summary.items():
        print(f"median {key}: {medians}")
    if output is not None:
        output.write_text(json.dumps({"runs": results, "medians": summary}, indent=1))


def drop(state_path: Path) -> None:
    import shutil

    state = json.loads(state_path.read_text())
    cluster = reattach(state)
    cluster.stop()
    shutil.rmtree(state["data_dir"], ignore_errors=True)
    state_path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["setup", "run", "drop"])
    parser.add_argument("--state", type=Path, action="append", required=True)
    parser.add_argument("--agents", type=int, default=2500)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--code", action="append", default=[], help="NAME=DIR, a lifeboat checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.state[0], args.agents, args.workdir)
    elif args.command == "run":
        codes = dict(item.split("=", 1) for item in args.code) or {"here": str(HERE.parent)}
        run(args.state, {name: Path(path) for name, path in codes.items()}, args.rounds, args.output)
    else:
        for state in args.state:
            drop(state)


if __name__ == "__main__":
    main()
