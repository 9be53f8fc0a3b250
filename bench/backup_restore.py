"""Backup and restore speed against PostgreSQL's own tools, on the same database in one run.

    .venv/bin/python bench/backup_restore.py --agents 5000          # ~2 GB synthetic deployment
    .venv/bin/python bench/backup_restore.py --agents 200 --quick   # a smoke run

Builds a throwaway cluster (PostgreSQL 18, durable settings), migrates Letta 0.16.8's schema,
fills it with bench/synthetic.py, then times, each as its own process (peak RSS from wait4):
lifeboat backup (first and incremental), lifeboat restore, pg_dump -Fc, pg_dump -Fd -j2,
pg_restore -j2 of that directory dump, a raw COPY of every table to /dev/null (one connection,
and two in parallel), and a one-agent restore. Prints JSON; ``--markdown`` appends a section
to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402
from synthetic import Scale, generate  # noqa: E402

from lifeboat.sandbox.letta_env import ensure_letta_env  # noqa: E402
from lifeboat.sandbox.letta_schema import create_letta_database, migrate  # noqa: E402
from lifeboat.sandbox.postgres import Cluster, start_cluster  # noqa: E402

LIFEBOAT = str(HERE.parent / ".venv" / "bin" / "lifeboat")


SERVER: dict[str, Any] = {"pid": None}  # the cluster's postmaster, for its children's CPU time
PROFILE: dict[str, Any] = {"dir": None}  # --profile: lifeboat commands run under py-spy


def server_cpu_seconds() -> float:
    """CPU the cluster's server processes used so far: the postmaster's own time plus that of its
    children it has reaped (every backend that ended), from /proc; 0 when unknown."""
    pid = SERVER["pid"]
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def profiled(name: str, command: list[str]) -> list[str]:
    """``command`` under ``py-spy record`` (raw collapsed stacks, all threads) when profiling."""
    if PROFILE["dir"] is None:
        return command
    out = Path(PROFILE["dir"]) / f"{name}.txt"
    spy = str(HERE.parent / ".venv" / "bin" / "py-spy")
    return [spy, "record", "--format", "raw", "--rate", "97", "--output", str(out), "--", *command]


def timed(command: list[str], env: dict[str, str] | None = None, stdout: int | None = None) -> dict[str, Any]:
    """Run a command; wall seconds and the process's own peak RSS (MB); its JSON output if it printed one.

    ``client_cpu`` is the command's own CPU seconds (user + system, from wait4), ``server_cpu`` the
    PostgreSQL server's over the same interval: on 2 cores their sum bounds the wall time from below.
    """
    server_before = server_cpu_seconds()
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        printed, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed ({status}): {stderr[-2000:]}")
    time.sleep(0.5)  # the postmaster reaps the command's backends (and adds their CPU) just after it ends
    result: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "client_cpu": round(usage.ru_utime + usage.ru_stime, 2),
        "server_cpu": round(server_cpu_seconds() - server_before, 2),
    }
    if "--json" in command and PROFILE["dir"] is None:
        result["output"] = json.loads(printed)
    return result


def change_one_agent(dsn: str) -> None:
    """The incremental case: one agent's memory edited and ten messages added to it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO letta")
        agent = conn.execute(
            "SELECT id, organization_id FROM agents ORDER BY id OFFSET 11 LIMIT 1"
        ).fetchone()
        assert agent is not None
        conn.execute(
            "UPDATE block SET value = value || ' (edited)' WHERE id IN "
            "(SELECT block_id FROM blocks_agents WHERE agent_id = %s AND block_label = 'human')",
            (agent[0],),
        )
        for number in range(10):
            conn.execute(
                "INSERT INTO messages (id, agent_id, role, content, tool_calls, organization_id) VALUES "
                "(%s, %s, 'user', json_build_array(json_build_object('type', 'text', 'text', %s::text)), '[]', %s)",
                (f"message-{uuid.uuid4()}", agent[0], f"incremental message {number}", agent[1]),
            )


def raw_copy_seconds(dsn: str, jobs: int) -> float:
    """COPY every table to nowhere, on ``jobs`` connections: the floor any logical backup pays."""
    from concurrent.futures import ThreadPoolExecutor

    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = 'letta' ORDER BY pg_total_relation_size(c.oid) DESC"
        )]  # fmt: skip

    def copy(table: str) -> int:
        total = 0
        with (
            psycopg.connect(dsn) as conn,
            conn.cursor() as cur,
            cur.copy(f"COPY {table} TO STDOUT") as stream,
        ):
            for chunk in stream:
                total += len(chunk)
        return total

    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(copy, tables))
    return round(time.monotonic() - started, 2)


def build(cluster: Cluster, scale: Scale) -> tuple[str, dict[str, Any]]:
    dsn = create_letta_database(cluster, "letta")
    migrate(ensure_letta_env(), dsn)
    counts = generate(dsn, scale)
    cluster.execute("VACUUM ANALYZE", "letta")
    with psycopg.connect(dsn) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    counts["database_bytes"] = size
    return cluster.dsn("letta"), counts


def one_agent_restore(repo: str, env: dict[str, str], admin_dsn: str) -> dict[str, Any] | None:
    """Time `lifeboat restore --agent` of one agent in place, if that command exists yet."""
    with psycopg.connect(admin_dsn) as conn:
        agent = conn.execute("SELECT id FROM letta.agents ORDER BY id OFFSET 7 LIMIT 1").fetchone()
    help_text = subprocess.run([LIFEBOAT, "restore", "--help"], capture_output=True, text=True).stdout
    if agent is None or "--agent" not in help_text:
        return None
    command = [
        LIFEBOAT,
        "--json",
        "restore",
        "--repo",
        repo,
        "--agent",
        agent[0],
        "--db",
        admin_dsn,
        "--force",
    ]
    result = timed(command, env, stdout=subprocess.PIPE)
    return result


def run(scale: Scale, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "LIFEBOAT_PASSWORD": "bench-passphrase"}
    results: dict[str, Any] = {"machine": machine(), "scale": scale.__dict__}
    with start_cluster("pg18", base_dir=workdir, durable=True) as cluster:
        SERVER["pid"] = int((cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        started = time.monotonic()
        dsn, counts = build(cluster, scale)
        results["dataset"] = counts | {"build_seconds": round(time.monotonic() - started, 1)}
        results["load_average_before"] = wait_for_quiet()
        pg_dump, pg_restore = cluster.tool("pg_dump"), cluster.tool("pg_restore")
        repo = str(workdir / "repo")
        subprocess.run([LIFEBOAT, "init", "--repo", repo], env=env, check=True, capture_output=True)
        r = results["runs"] = {}
        r["raw_copy_1conn"] = {"seconds": raw_copy_seconds(dsn, 1)}
        r["raw_copy_2conn"] = {"seconds": raw_copy_seconds(dsn, 2)}
        r["lifeboat_backup"] = timed(
            profiled("backup", [LIFEBOAT, "--json", "backup", "--repo", repo, "--db", dsn, "--jobs", "2"]),
            env,
        )
        change_one_agent(dsn)
        r["lifeboat_backup_incremental"] = timed(
            [LIFEBOAT, "--json", "backup", "--repo", repo, "--db", dsn], env
        )
        r["repo_bytes"] = sum(f.stat().st_size for f in Path(repo).rglob("*") if f.is_file())
        r["pg_dump_Fc"] = timed([pg_dump, "-Fc", "-f", str(workdir / "dump.fc"), dsn])
        r["pg_dump_Fc"]["bytes"] = (workdir / "dump.fc").stat().st_size
        r["pg_dump_Fd_j2"] = timed([pg_dump, "-Fd", "-j2", "-f", str(workdir / "dump.dir"), dsn])
        cluster.create_database("pgrestore_target", owner="letta")
        r["pg_restore_j2"] = timed(
            [pg_restore, "-j2", "-d", cluster.dsn("pgrestore_target"), str(workdir / "dump.dir")]
        )
        r["lifeboat_restore"] = timed(
            profiled(
                "restore",
                [
                    LIFEBOAT,
                    "--json",
                    "restore",
                    "latest",
                    "--repo",
                    repo,
                    "--target",
                    cluster.dsn("lifeboat_target"),
                ],
            ),
            env,
        )
        agent = one_agent_restore(repo, env, dsn)
        if agent is not None:
            r["lifeboat_restore_one_agent"] = agent
        results["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    results["ratios"] = ratios(results["runs"])
    return results


QUIET: dict[str, float] = {"load": 0.0, "max_wait": 0.0}  # --wait-load, --wait-max


def wait_for_quiet() -> list[float]:
    """With ``--wait-load``, wait (at most ``--wait-max`` seconds) after building the deployment until the
    1-minute load average is below it, so a shared machine's busy hour spoils only the build.
    Returns the load averages the timings start with."""
    deadline = time.monotonic() + QUIET["max_wait"]
    while QUIET["load"] and os.getloadavg()[0] >= QUIET["load"] and time.monotonic() < deadline:
        time.sleep(15)
    return [round(value, 2) for value in os.getloadavg()]


def ratios(r: dict[str, Any]) -> dict[str, float]:
    backup = r["lifeboat_backup"]["seconds"]
    restore = r["lifeboat_restore"]["seconds"]
    return {
        "backup_vs_pg_dump_Fc": round(backup / r["pg_dump_Fc"]["seconds"], 3),
        "backup_vs_pg_dump_Fd_j2": round(backup / r["pg_dump_Fd_j2"]["seconds"], 3),
        "restore_vs_pg_restore_j2": round(restore / r["pg_restore_j2"]["seconds"], 3),
        "backup_vs_raw_copy_2conn": round(backup / r["raw_copy_2conn"]["seconds"], 3),
        "backup_vs_raw_copy_1conn": round(backup / r["raw_copy_1conn"]["seconds"], 3),
        "incremental_seconds_share": round(r["lifeboat_backup_incremental"]["seconds"] / backup, 3),
    } | _incremental_bytes(r)


def _incremental_bytes(r: dict[str, Any]) -> dict[str, float]:
    if "output" not in r["lifeboat_backup"]:  # profiled: the output went to py-spy's stdout
        return {}
    added = r["lifeboat_backup_incremental"]["output"]["bytes_added"]
    return {"incremental_bytes_share": round(added / r["lifeboat_backup"]["output"]["bytes_added"], 4)}


def machine() -> dict[str, Any]:
    memory = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=Scale.agents)
    parser.add_argument("--messages-per-agent", type=int, default=Scale.messages_per_agent)
    parser.add_argument("--passages-per-agent", type=int, default=Scale.passages_per_agent)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="write the JSON results here")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run lifeboat backup and restore under py-spy (installed by hand into .venv), writing "
        "collapsed stacks there (bench/profile_summary.py summarizes them); their times then include py-spy",
    )
    parser.add_argument(
        "--wait-load", type=float, default=0.0, help="after building, wait for a load below this"
    )
    parser.add_argument("--wait-max", type=float, default=1800.0, help="seconds --wait-load waits at most")
    args = parser.parse_args()
    QUIET.update(load=args.wait_load, max_wait=args.wait_max)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE["dir"] = args.profile.resolve()
    scale = Scale(args.agents, args.messages_per_agent, args.passages_per_agent)
    workdir = Path(tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir))
    try:
        results = run(scale, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
