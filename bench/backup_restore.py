"""Backup and restore speed against PostgreSQL's own tools, on the same database in one run.

    .venv/bin/python bench/backup_restore.py --agents 5000                    # 1x: ~2.5 GB
    .venv/bin/python bench/backup_restore.py --agents 5000 --scales 1,2,4 --s3 both  # every issue-15 row
    .venv/bin/python bench/backup_restore.py --agents 200 --scales 1,2 --s3 both     # a smoke run

Builds a throwaway cluster (PostgreSQL 18, durable settings), migrates Letta 0.16.8's schema and
fills it with bench/synthetic.py; with ``--scales`` it grows that database to each factor in turn
(factor n = n synthetic parts, part 0 being the default deployment) and, at each, times as its own
process (peak RSS from wait4): a raw COPY of every table to nowhere (one connection, and two in
parallel), lifeboat backup, lifeboat backup again after 1 % of the agents changed (bench/changes.py;
``--incremental-rounds`` times, 3 by default, each after a new change: the median is the row),
pg_dump -Fc, pg_dump -Fd -j2 (at 1x only unless ``--all-baselines``), pg_restore -j2 of the -Fc
dump, lifeboat restore of the whole snapshot, and a one-agent restore in place. ``--s3`` adds
lifeboat backup and restore against a local moto S3 server (bench/s3_local.py) on the same data:
``moto`` is moto_server as shipped, ``moto-ranged`` the same server reading only the requested
bytes for a ranged GET (bench/moto_ranged.py explains why), ``both`` measures both.
Every restored database is checked for the source's row counts, then dropped. Prints JSON with the
issue's ratios per scale and the linearity across scales.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402
from changes import change_agents  # noqa: E402
from restore_phases import postmaster_cpu_seconds  # noqa: E402
from s3_local import MotoServer  # noqa: E402
from synthetic import Scale, generate  # noqa: E402

from lifeboat.sandbox.letta_env import ensure_letta_env  # noqa: E402
from lifeboat.sandbox.letta_schema import create_letta_database, migrate  # noqa: E402
from lifeboat.sandbox.postgres import Cluster, start_cluster  # noqa: E402

LIFEBOAT = str(HERE.parent / ".venv" / "bin" / "lifeboat")
S3_SERVERS = {  # --s3 choice: (row prefix, command that starts the server)
    "moto": ("s3", [str(HERE.parent / ".venv" / "bin" / "moto_server")]),
    "moto-ranged": ("s3ranged", [sys.executable, str(HERE / "moto_ranged.py")]),
}


SERVER: dict[str, Any] = {"pid": None}  # the cluster's postmaster, for its children's CPU time
PROFILE: dict[str, Any] = {"dir": None}  # --profile: lifeboat commands run under py-spy


def server_cpu_seconds() -> float:
    """CPU the cluster's server processes used so far (``restore_phases.postmaster_cpu_seconds``);
    0 when unknown."""
    pid = SERVER["pid"]
    return 0.0 if pid is None else postmaster_cpu_seconds(pid)


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


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (of an odd number; the slower middle one of an even number),
    with every run's seconds in the order they ran and the highest peak RSS of them all. One
    incremental of ~1.2 s moved by up to 0.18 s between quiet samples of one code (BENCHMARKS.md,
    runs 16 and 17), more than the margin its target leaves."""
    middle = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return middle | {
        "samples_seconds": [run["seconds"] for run in runs],
        "samples_cpu": [round(run["client_cpu"] + run["server_cpu"], 2) for run in runs],
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
    }


def raw_copy(dsn: str, jobs: int) -> dict[str, float]:
    """``raw_copy_seconds`` with the CPU it used: this process's (its COPY threads) and the server's."""
    server, own = server_cpu_seconds(), os.times()
    seconds = raw_copy_seconds(dsn, jobs)
    time.sleep(0.5)  # the postmaster reaps the COPY backends
    after = os.times()
    return {
        "seconds": seconds,
        "client_cpu": round(after.user + after.system - own.user - own.system, 2),
        "server_cpu": round(server_cpu_seconds() - server, 2),
    }


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
    """The deployment at ``scale`` in a new database ``letta``: (its DSN, rows per table and size)."""
    dsn = create_letta_database(cluster, "letta")
    migrate(ensure_letta_env(), dsn)
    counts = generate(dsn, scale)
    settle(cluster)
    counts["database_bytes"] = database_facts(dsn)["database_bytes"]
    return cluster.dsn("letta"), counts


def grow(cluster: Cluster, dsn: str, scale: Scale, parts: int, factor: int) -> dict[str, Any]:
    """Add synthetic parts ``parts..factor-1`` (each one more default deployment) to ``dsn``."""
    started = time.monotonic()
    for part in range(parts, factor):
        generate(dsn, scale, part=part)
    settle(cluster)
    return database_facts(dsn) | {"build_seconds": round(time.monotonic() - started, 1)}


def settle(cluster: Cluster) -> None:
    """VACUUM ANALYZE the new rows, then write out what that and the build left dirty (a
    checkpoint, then the OS's page cache), so the timings start from a server at rest. Without
    it the first commands timed ran while the build's ~2.4 GB were still being written back: the
    first incremental after the full backup took 1.34-1.44 s against 1.16-1.23 s for the next
    ones (runs 23-25)."""
    cluster.execute("VACUUM ANALYZE", "letta")
    cluster.execute("CHECKPOINT", "letta")
    os.sync()


def database_facts(dsn: str) -> dict[str, Any]:
    """Size and the row counts a restore must reproduce (checked after every restore)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()), (SELECT count(*) FROM letta.agents), "
            "(SELECT count(*) FROM letta.messages), (SELECT count(*) FROM letta.archival_passages)"
        ).fetchone()
    assert row is not None
    return dict(zip(("database_bytes", "agents", "messages", "archival_passages"), row, strict=True))


def check_restored(cluster: Cluster, name: str, expected: dict[str, Any]) -> None:
    """The restored database has the source's rows (a cheap sanity check; the suite proves exactness)."""
    got = database_facts(cluster.dsn(name))
    for key in ("agents", "messages", "archival_passages"):
        if got[key] != expected[key]:
            raise SystemExit(f"restored database {name}: {key} {got[key]} != {expected[key]}")


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
    return timed(command, env, stdout=subprocess.PIPE)


@dataclass
class Options:
    """What to measure at each scale (from the command line)."""

    s3: tuple[str, ...] = ()  # keys of S3_SERVERS
    all_baselines: bool = False
    output: Path | None = None  # the results so far are written here after each scale
    incremental_rounds: int = 3  # incrementals after a 1 % change each; the median is the row


def run(scale: Scale, factors: list[int], options: Options, workdir: Path) -> dict[str, Any]:
    """Build the deployment at each factor of ``scale`` in turn (growing one database) and measure it."""
    results: dict[str, Any] = {
        "machine": machine(),
        "code": code_commit(),
        "bytecode": compile_bytecode(),
        "scale": scale.__dict__,
        "factors": factors,
        "scales": {},
    }
    with start_cluster("pg18", base_dir=workdir, durable=True) as cluster:
        SERVER["pid"] = int((cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        started = time.monotonic()
        dsn = create_letta_database(cluster, "letta")
        migrate(ensure_letta_env(), dsn)
        dsn, parts = cluster.dsn("letta"), 0
        for factor in factors:
            dataset = grow(cluster, dsn, scale, parts, factor)
            if parts == 0:
                dataset["build_seconds"] = round(time.monotonic() - started, 1)
            parts = factor
            measured = measure(
                cluster, dsn, workdir / f"x{factor}", factor == 1 or options.all_baselines, options
            )
            results["scales"][f"{factor}x"] = {"factor": factor, "dataset": dataset} | measured
            print(f"{factor}x: {json.dumps(measured['ratios'])}", file=sys.stderr, flush=True)
            if options.output:
                options.output.write_text(json.dumps(results, indent=2) + "\n")
    results["linearity"] = linearity(results["scales"])
    return results


def measure(cluster: Cluster, dsn: str, work: Path, full: bool, options: Options) -> dict[str, Any]:
    """Every row at one scale, each command as its own process; work files removed as soon as used."""
    work.mkdir()
    env = {**os.environ, "LIFEBOAT_PASSWORD": "bench-passphrase"}
    out: dict[str, Any] = {"load_average_before": wait_for_quiet(), "skipped": []}
    pg_dump, pg_restore = cluster.tool("pg_dump"), cluster.tool("pg_restore")
    repo = str(work / "repo")
    subprocess.run([LIFEBOAT, "init", "--repo", repo], env=env, check=True, capture_output=True)
    r: dict[str, Any] = {}
    r["raw_copy_1conn"] = raw_copy(dsn, 1)
    r["raw_copy_2conn"] = raw_copy(dsn, 2)
    backup = [LIFEBOAT, "--json", "backup", "--db", dsn, "--jobs", "2", "--repo"]
    r["lifeboat_backup"] = timed(profiled("backup", [*backup, repo]), env)
    incrementals = []
    for _ in range(options.incremental_rounds):
        changed = change_agents(dsn)
        incrementals.append(timed([*backup, repo], env) | {"changed": changed})
    r["lifeboat_backup_incremental"] = median_run(incrementals)
    r["repo_bytes"] = sum(f.stat().st_size for f in Path(repo).rglob("*") if f.is_file())
    expected = database_facts(dsn)
    with contextlib.ExitStack() as stack:
        servers = []
        for choice in options.s3:
            prefix, command = S3_SERVERS[choice]
            s3 = stack.enter_context(MotoServer(command))
            s3_repo, s3_env = f"s3://{s3.new_bucket()}/repo", s3.env(env)
            subprocess.run([LIFEBOAT, "init", "--repo", s3_repo], env=s3_env, check=True, capture_output=True)
            r[f"{prefix}_lifeboat_backup"] = s3_timed(s3, [*backup, s3_repo], s3_env) | {"server": choice}
            servers.append((prefix, s3, s3_repo, s3_env))
        dump = work / "dump.fc"
        r["pg_dump_Fc"] = timed([pg_dump, "-Fc", "-f", str(dump), dsn]) | {"bytes": dump.stat().st_size}
        if full:
            r["pg_dump_Fd_j2"] = timed([pg_dump, "-Fd", "-j2", "-f", str(work / "dump.dir"), dsn])
            shutil.rmtree(work / "dump.dir")
        else:
            out["skipped"].append("pg_dump -Fd -j2 (only at 1x unless --all-baselines)")
        cluster.create_database("pgrestore_target", owner="letta")
        r["pg_restore_j2"] = timed([pg_restore, "-j2", "-d", cluster.dsn("pgrestore_target"), str(dump)])
        r["pg_restore_j2"]["of"] = "the pg_dump -Fc file"
        dump.unlink()
        check_restored(cluster, "pgrestore_target", expected)
        cluster.drop_database("pgrestore_target")
        restore = [LIFEBOAT, "--json", "restore", "latest", "--target"]
        r["lifeboat_restore"] = timed(
            profiled("restore", [*restore, cluster.dsn("lifeboat_target"), "--repo", repo]), env
        )
        check_restored(cluster, "lifeboat_target", expected)
        cluster.drop_database("lifeboat_target")
        for prefix, s3, s3_repo, s3_env in servers:
            command = [*restore, cluster.dsn(f"{prefix}_target"), "--repo", s3_repo]
            r[f"{prefix}_lifeboat_restore"] = s3_timed(s3, command, s3_env)
            check_restored(cluster, f"{prefix}_target", expected)
            cluster.drop_database(f"{prefix}_target")
            r[f"{prefix}_server_peak_rss_mb"] = s3.rss_mb()
    agent = one_agent_restore(repo, env, dsn)
    if agent is not None:
        r["lifeboat_restore_one_agent"] = agent
    shutil.rmtree(work)
    out["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    out["database_gb"] = round(expected["database_bytes"] / 1e9, 3)
    return out | {"runs": r, "ratios": ratios(r)}


def s3_timed(s3: MotoServer, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """``timed`` plus the CPU the moto server spent meanwhile (a remote S3 would not use these cores)."""
    before = s3.cpu_seconds()
    result = timed(command, env)
    return result | {"s3_server_cpu": round(s3.cpu_seconds() - before, 2)}


def code_commit() -> str:
    """The lifeboat commit measured (``+dirty`` when the work tree has uncommitted changes)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True
        ).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (
        "+dirty" if git("status", "--porcelain", "--", "lifeboat") else ""
    )


QUIET: dict[str, float] = {"load": 0.0, "max_wait": 0.0}  # --wait-load, --wait-max


def wait_for_quiet() -> list[float]:
    """With ``--wait-load``, wait (at most ``--wait-max`` seconds) after building the deployment until the
    1-minute load average is below it, so a shared machine's busy hour spoils only the build.
    Returns the load averages the timings start with."""
    deadline = time.monotonic() + QUIET["max_wait"]
    while QUIET["load"] and os.getloadavg()[0] >= QUIET["load"] and time.monotonic() < deadline:
        time.sleep(15)
    return [round(value, 2) for value in os.getloadavg()]


LIFEBOAT_COMMANDS = (
    "lifeboat_backup",
    "lifeboat_backup_incremental",
    "lifeboat_restore",
    "lifeboat_restore_one_agent",
    "s3_lifeboat_backup",
    "s3_lifeboat_restore",
    "s3ranged_lifeboat_backup",
    "s3ranged_lifeboat_restore",
)


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    """Each issue-15 ratio from one scale's rows (the baselines were measured in the same run)."""
    backup = r["lifeboat_backup"]["seconds"]
    restore = r["lifeboat_restore"]["seconds"]
    out: dict[str, Any] = {
        "restore_vs_pg_restore_j2": round(restore / r["pg_restore_j2"]["seconds"], 3),
        "restore_cpu_vs_pg_restore_j2_cpu": _cpu_ratio(r, "lifeboat_restore", "pg_restore_j2"),
        "backup_cpu_vs_pg_dump_Fc_cpu": _cpu_ratio(r, "lifeboat_backup", "pg_dump_Fc"),
        "backup_cpu_vs_raw_copy_2conn_cpu": _cpu_ratio(r, "lifeboat_backup", "raw_copy_2conn"),
        "backup_vs_pg_dump_Fc": round(backup / r["pg_dump_Fc"]["seconds"], 3),
        "backup_vs_raw_copy_2conn": round(backup / r["raw_copy_2conn"]["seconds"], 3),
        "backup_vs_raw_copy_1conn": round(backup / r["raw_copy_1conn"]["seconds"], 3),
        "incremental_seconds_share": round(r["lifeboat_backup_incremental"]["seconds"] / backup, 3),
        "incremental_agents_changed": r["lifeboat_backup_incremental"]["changed"]["agents_changed"],
    }
    if "pg_dump_Fd_j2" in r:
        out["backup_vs_pg_dump_Fd_j2"] = round(backup / r["pg_dump_Fd_j2"]["seconds"], 3)
    for prefix in ("s3", "s3ranged"):
        if f"{prefix}_lifeboat_backup" in r:
            out[f"{prefix}_backup_vs_local"] = round(r[f"{prefix}_lifeboat_backup"]["seconds"] / backup, 3)
            out[f"{prefix}_restore_vs_local"] = round(r[f"{prefix}_lifeboat_restore"]["seconds"] / restore, 3)
    one = r.get("lifeboat_restore_one_agent", {}).get("output", {})
    if "bytes_read" in one:
        out["one_agent_seconds"] = r["lifeboat_restore_one_agent"]["seconds"]
        out["one_agent_operation_seconds"] = one["seconds"]
        out["one_agent_read_share"] = round(one["bytes_read"] / one["snapshot_bytes"], 4)
    rss = {name: r[name]["peak_rss_mb"] for name in LIFEBOAT_COMMANDS if name in r}
    out["peak_rss_mb_max"] = max(rss.values())
    out["peak_rss_within_300mb"] = out["peak_rss_mb_max"] <= 300
    return out | _incremental_bytes(r)


def _cpu_ratio(r: dict[str, Any], name: str, baseline: str) -> float | None:
    """CPU seconds (the command's + the server's) of ``name`` over ``baseline``'s: a ratio the other
    work on a shared machine moves far less than the wall-time one (it is not the target's ratio)."""
    if "client_cpu" not in r[baseline] or "client_cpu" not in r[name]:
        return None
    used = r[name]["client_cpu"] + r[name]["server_cpu"]
    return round(used / (r[baseline]["client_cpu"] + r[baseline]["server_cpu"]), 3)


def _incremental_bytes(r: dict[str, Any]) -> dict[str, float]:
    if "output" not in r["lifeboat_backup"]:  # profiled: the output went to py-spy's stdout
        return {}
    added = r["lifeboat_backup_incremental"]["output"]["bytes_added"]
    return {"incremental_bytes_share": round(added / r["lifeboat_backup"]["output"]["bytes_added"], 4)}


def linearity(scales: dict[str, Any]) -> dict[str, Any]:
    """Seconds per GB of database at each scale, and each against the smallest scale's (1.0 = linear);
    the same for CPU seconds (the command's own plus the server's: on a shared machine the CPU a
    command used moves far less with the load than its wall time); peak RSS and the one-agent
    restore at each scale (both should stay flat)."""
    rows: dict[str, Any] = {}
    first: dict[str, float] = {}
    for label, scale in scales.items():
        gb, r = scale["database_gb"], scale["runs"]
        row: dict[str, Any] = {"database_gb": gb}
        for name in ("lifeboat_backup", "lifeboat_restore", "pg_dump_Fc", "pg_restore_j2", "raw_copy_2conn"):
            _per_gb(row, first, name, "s", r[name]["seconds"] / gb)
            if "client_cpu" in r[name]:
                _per_gb(row, first, name, "cpu_s", (r[name]["client_cpu"] + r[name]["server_cpu"]) / gb)
        if "lifeboat_restore_one_agent" in r:
            one = r["lifeboat_restore_one_agent"]
            row["one_agent_restore_seconds"] = one["seconds"]
            row["one_agent_restore_cpu_s"] = round(one["client_cpu"] + one["server_cpu"], 2)
        row["peak_rss_mb"] = {name: r[name]["peak_rss_mb"] for name in LIFEBOAT_COMMANDS if name in r}
        rows[label] = row
    return rows


def _per_gb(row: dict[str, Any], first: dict[str, float], name: str, unit: str, per_gb: float) -> None:
    first.setdefault(f"{name}_{unit}", per_gb)
    row[f"{name}_{unit}_per_gb"] = round(per_gb, 2)
    row[f"{name}_{unit}_per_gb_vs_first"] = round(per_gb / first[f"{name}_{unit}"], 3)


def compile_bytecode() -> str:
    """Compile lifeboat and its dependencies to ``.pyc`` ahead, as installing them does.

    This machine's environment sets ``PYTHONDONTWRITEBYTECODE=1`` and uv does not compile at
    install, so without this every lifeboat process compiles every module it imports from
    source (~0.5 s of a one-agent restore), which no installed lifeboat does after its first run.
    """
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *paths, str(HERE.parent / "lifeboat")],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return "compiled ahead (.pyc), as an installed lifeboat"


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


def s3_choices(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(S3_SERVERS) if value == "both" else (value,)


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
    parser.add_argument(
        "--scales",
        type=lambda text: sorted({int(part) for part in text.split(",")}),
        default=[1],
        help="comma-separated factors of the deployment to measure, e.g. 1,2,4 (default: 1)",
    )
    parser.add_argument(
        "--s3",
        choices=("moto", "moto-ranged", "both"),
        default=None,
        help="also back up to and restore from a local S3 server: moto as shipped, moto serving ranged "
        "GETs without reading the whole object (bench/moto_ranged.py), or both",
    )
    parser.add_argument(
        "--all-baselines", action="store_true", help="pg_dump -Fd -j2 at every scale, not only at 1x"
    )
    parser.add_argument(
        "--incremental-rounds",
        type=int,
        default=Options.incremental_rounds,
        help="incremental backups, each after 1 %% of the agents changed; the median one is the row (default 3)",
    )
    args = parser.parse_args()
    if args.incremental_rounds < 1:
        parser.error("--incremental-rounds must be at least 1")
    QUIET.update(load=args.wait_load, max_wait=args.wait_max)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE["dir"] = args.profile.resolve()
    scale = Scale(args.agents, args.messages_per_agent, args.passages_per_agent)
    workdir = Path(tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir))
    try:
        results = run(
            scale,
            args.scales,
            Options(s3_choices(args.s3), args.all_baselines, args.output, args.incremental_rounds),
            workdir,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
