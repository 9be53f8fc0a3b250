"""Where a full restore's server time goes, task by task, against ``pg_restore -j2`` of the same data.

    .venv/bin/python bench/restore_phases.py setup --agents 1000 --state /tmp/rp.json   # build once, kept
    .venv/bin/python bench/restore_phases.py run --state /tmp/rp.json --rounds 2        # interleaved timings
    .venv/bin/python bench/restore_phases.py drop --state /tmp/rp.json                  # remove the cluster

``setup`` builds a durable PostgreSQL 18 cluster with the synthetic deployment (bench/synthetic.py),
a lifeboat backup and a ``pg_dump -Fd`` of it, and keeps them. ``run`` restarts that cluster and,
``--rounds`` times, restores the dump with ``pg_restore -j2`` and the snapshot with lifeboat's
``run_restore`` (in this process, so each scheduled task's start and wall seconds can be read from
its ``ApplyReport``). Recorded per restore: wall seconds, the server's CPU (the postmaster's reaped
backends), this process's CPU, checkpoints and WAL written, autovacuum/autoanalyze runs on the
restored tables, and the load average; per lifeboat task: start, seconds, connection.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402
from synthetic import Scale, generate  # noqa: E402

from lifeboat import pg  # noqa: E402
from lifeboat.sandbox.letta_env import ensure_letta_env  # noqa: E402
from lifeboat.sandbox.letta_schema import create_letta_database, migrate  # noqa: E402
from lifeboat.sandbox.postgres import Cluster, bin_dir, start_cluster  # noqa: E402

LIFEBOAT = str(HERE.parent / ".venv" / "bin" / "lifeboat")
PASSPHRASE = "bench-passphrase"


def build_deployment(
    cluster: Cluster,
    agents: int,
    command: Callable[..., list[str]] = lambda *args: [LIFEBOAT, *args],
    env: dict[str, str] | None = None,
) -> str:
    """Letta 0.16.8's schema in database ``letta`` of ``cluster``, filled by bench/synthetic.py,
    and one backup of it into a new repository in the cluster's directory (returned).
    ``command``: the lifeboat command line for some arguments; ``env``: its environment."""
    dsn = create_letta_database(cluster, "letta")
    migrate(ensure_letta_env(), dsn)
    generate(dsn, Scale(agents=agents))
    cluster.execute("VACUUM ANALYZE", "letta")
    repo = str(cluster.data_dir / "repo")
    env = env or {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE}
    for args in (("init", "--repo", repo), ("backup", "--repo", repo, "--db", cluster.dsn("letta"))):
        subprocess.run(command(*args), env=env, check=True, capture_output=True)
    return repo


def setup(state: Path, agents: int, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = start_cluster("pg18", base_dir=workdir, durable=True, keep=True)
    try:
        repo = build_deployment(cluster, agents)
        dump = cluster.data_dir / "dump.dir"
        subprocess.run(
            [cluster.tool("pg_dump"), "-Fd", "-j2", "-f", str(dump), cluster.dsn("letta")], check=True
        )
    finally:
        cluster.stop()
    state.write_text(
        json.dumps(
            {
                "data_dir": str(cluster.data_dir),
                "port": cluster.port,
                "repo": repo,
                "dump": str(dump),
                "owner_uid": cluster._owner_uid,
            }
        )
    )


def reattach(state: dict[str, Any]) -> Cluster:
    return Cluster(
        "pg18",
        bin_dir("pg18"),
        Path(state["data_dir"]),
        state["port"],
        keep=True,
        _owner_uid=state["owner_uid"],
    )


def server_cpu(cluster: Cluster) -> float:
    return postmaster_cpu_seconds(
        int((cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    )


def postmaster_cpu_seconds(pid: int) -> float:
    """CPU a PostgreSQL server has used so far, from /proc: the postmaster's own time, that of the
    children it has reaped (every backend that ended, parallel workers included) and that of the
    children still running (PostgreSQL 18's I/O workers, which read for every session, the
    checkpointer, the WAL writer). (Before session 11 the running children were left out, and
    with them the I/O workers' copying of pages for the backends.)"""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile: reaped, so counted above once the postmaster waits for it
        if int(child[1]) == pid:
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def counters(cluster: Cluster) -> dict[str, float]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        ckpt = conn.execute("SELECT num_timed + num_requested FROM pg_stat_checkpointer").fetchone()
        wal = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return {"checkpoints": float(ckpt[0]), "wal_bytes": float(wal[0])}  # type: ignore[index]


def autovacuum_runs(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"
            " WHERE autovacuum_count + autoanalyze_count > 0"
        ).fetchall()
    return {f"{name} v{v} a{a}": 1 for name, v, a in rows}


PERF: dict[str, Any] = {"dir": None}  # --perf DIR: each restore under `perf record -a`, server pids kept


def under_perf(cluster: Cluster, name: str, what: Any) -> Any:
    """Run ``what()`` while ``perf record -a`` samples the machine; the cluster's backend pids (polled
    every 20 ms) go to ``<name>.pids`` so that ``perf report --pid`` can keep only this server."""
    if PERF["dir"] is None:
        return what()
    import threading

    out = Path(PERF["dir"]) / name
    postmaster = (cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]
    pids: set[str] = {postmaster}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            listing = subprocess.run(["pgrep", "-P", postmaster], capture_output=True, text=True).stdout
            pids.update(listing.split())
            time.sleep(0.02)

    perf = subprocess.Popen(
        ["perf", "record", "-a", "-F", "499", "-o", f"{out}.data"], stderr=subprocess.DEVNULL
    )
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        return what()
    finally:
        stop.set()
        poller.join()
        perf.send_signal(2)
        perf.wait()
        Path(f"{out}.pids").write_text(",".join(sorted(pids)))


def cpu_jiffies() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def measured(cluster: Cluster, what: Any) -> dict[str, Any]:
    before, cpu_before, self_before = (
        counters(cluster),
        server_cpu(cluster),
        resource.getrusage(resource.RUSAGE_SELF),
    )
    load_before = os.getloadavg()[0]
    log = cluster.data_dir / "server.log"
    offset = log.stat().st_size
    idle_before, total_before = cpu_jiffies()
    started = time.monotonic()
    extra = what()
    seconds = time.monotonic() - started
    idle_after, total_after = cpu_jiffies()
    with log.open("rb") as handle:
        handle.seek(offset)
        temp_files = [
            int(size) for size in re.findall(rb"temporary file: path .*?, size ([0-9]+)", handle.read())
        ]
    after, self_after = counters(cluster), resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": round(seconds, 2),
        "server_cpu": round(server_cpu(cluster) - cpu_before, 2),
        "client_cpu_inproc": round(
            self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime, 2
        ),
        "checkpoints": after["checkpoints"] - before["checkpoints"],
        "wal_mb": round((after["wal_bytes"] - before["wal_bytes"]) / 1e6),
        "machine_idle": round((idle_after - idle_before) / max(1, total_after - total_before), 3),
        "temp_files": [len(temp_files), round(sum(temp_files) / 1e6)],
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **(extra or {}),
    }


def pg_restore(cluster: Cluster, state: dict[str, Any]) -> dict[str, Any]:
    """``pg_restore -j2``; each statement's server duration from the log (log_min_duration_statement=0)."""
    log = cluster.data_dir / "server.log"
    offset = log.stat().st_size
    subprocess.run(
        [cluster.tool("pg_restore"), "-j2", "-d", cluster.dsn("pgrestore_target"), state["dump"]], check=True
    )
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    items = []
    for match in re.finditer(r"duration: ([0-9.]+) ms  statement: (.{0,120})", text):
        items.append((_item_name(match.group(2)), round(float(match.group(1)) / 1000, 3)))
    return {"items": items}


def _item_name(statement: str) -> str:
    words = statement.replace("\n", " ").split()
    if statement.startswith("COPY"):
        return f"load:{words[1]}"
    if "INDEX" in words[:3]:
        return f"index:{words[words.index('INDEX') + 1]}"
    if "CONSTRAINT" in words:
        return f"constraint:{words[words.index('CONSTRAINT') + 1]}"
    return "other:" + " ".join(words[:4])


def prepare_pg_restore_target(cluster: Cluster) -> None:
    cluster.drop_database("pgrestore_target")
    cluster.create_database("pgrestore_target", owner="letta")
    cluster.execute("ALTER DATABASE pgrestore_target SET log_min_duration_statement = 0")


# --variants: noanalyze, lateanalyze (every ANALYZE after its table's post-data), avon (autovacuum
# left on), pmw (parallel maintenance workers at the server's default, as before session 6),
# pmw0 (none: the default since session 6), pq0 (no parallel query), mwm1g, jobs3,
# nosync (synchronize_seqscans off), chainoff (post-data statements in the order they are made)
VARIANT: set[str] = set()


def lifeboat_restore(cluster: Cluster, state: dict[str, Any]) -> dict[str, Any]:
    from lifeboat.ops import restore as restore_module
    from lifeboat.pg import apply as apply_module

    session = tuple(apply_module.restore_session_sql(2))
    if "pmw" in VARIANT:  # parallel maintenance workers at the server's default (before session 6)
        session = tuple(apply_module.RESTORE_SESSION_SQL)
    if "pmw0" in VARIANT:
        session += ("SET max_parallel_maintenance_workers = 0",)
    if "pq0" in VARIANT:
        session += ("SET max_parallel_workers_per_gather = 0",)
    if "mwm1g" in VARIANT:
        session += ("SET maintenance_work_mem = '1GB'",)
    if "nosync" in VARIANT:  # every heap scan from block 0 (index builds see the load's order)
        session += ("SET synchronize_seqscans = off",)
    saved_session = apply_module.restore_session_sql
    saved_order = apply_module.longest_chain_first
    if "chainoff" in VARIANT:  # post-data statements in the order they are made (before session 7)
        apply_module.longest_chain_first = lambda tasks, seconds: list(tasks)  # type: ignore[assignment]
    apply_module.restore_session_sql = lambda jobs: session  # type: ignore[assignment]
    from lifeboat.repo.repository import Repository

    cluster.drop_database("lifeboat_target")
    reports: list[pg.ApplyReport] = []
    original = restore_module.pg.load_and_apply_post_data

    def capture(*args: Any, **kwargs: Any) -> pg.ApplyReport:
        if "noanalyze" in VARIANT:
            kwargs["analyze_tables"] = False
        report = original(*args, **kwargs)
        reports.append(report)
        return report

    restore_module.pg.load_and_apply_post_data = capture  # type: ignore[attr-defined]
    paused = restore_module.pg.pause_autovacuum, restore_module.pg.resume_autovacuum
    has_expressions = apply_module.index_has_expressions
    if "lateanalyze" in VARIANT:  # every ANALYZE after its table's post-data (as before)
        apply_module.index_has_expressions = lambda definition: True  # type: ignore[assignment]
    if "avon" in VARIANT:  # autovacuum left on during the restore (before it was paused)
        restore_module.pg.pause_autovacuum = restore_module.pg.resume_autovacuum = lambda *a: None  # type: ignore[attr-defined]
    try:
        result = restore_module.run_restore(
            Repository.open(state["repo"], PASSPHRASE),
            "latest",
            cluster.dsn("lifeboat_target"),
            jobs=3 if "jobs3" in VARIANT else 2,
        )
    finally:
        restore_module.pg.load_and_apply_post_data = original  # type: ignore[attr-defined]
        apply_module.restore_session_sql = saved_session  # type: ignore[assignment]
        apply_module.longest_chain_first = saved_order  # type: ignore[assignment]
        restore_module.pg.pause_autovacuum, restore_module.pg.resume_autovacuum = paused  # type: ignore[attr-defined]
        apply_module.index_has_expressions = has_expressions  # type: ignore[assignment]
    report = reports[0]
    origin = min(report.started.values(), default=0.0)
    tasks = sorted(
        (
            (key, round(report.started[key] - origin, 2), round(seconds, 2))
            for key, seconds in report.seconds.items()
        ),
        key=lambda item: item[1],
    )
    return {"timings": {k: round(v, 2) for k, v in result.timings.items()}, "tasks": tasks}


AFTERMATH = {"seconds": 0.0}  # --aftermath: watch the server after pg_restore this long


def aftermath(cluster: Cluster, seconds: float) -> dict[str, Any]:
    """What the server still does for the database pg_restore left (unfrozen, never analyzed):
    autovacuum's work on it over ``seconds``, from the server's CPU and autovacuum's own log."""
    log = cluster.data_dir / "server.log"
    offset, cpu = log.stat().st_size, server_cpu(cluster)
    deadline = time.monotonic() + seconds
    busy_until = time.monotonic()
    while time.monotonic() < deadline:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            active = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            ).fetchone()
        if active and active[0]:
            busy_until = time.monotonic()
        time.sleep(0.5)
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    cpu_used = [
        float(u) + float(sy) for u, sy in re.findall(r"CPU: user: ([0-9.]+) s, system: ([0-9.]+) s", text)
    ]
    return {
        "server_cpu": round(server_cpu(cluster) - cpu, 2),
        "autovacuum_runs": len(cpu_used),
        "autovacuum_cpu": round(sum(cpu_used), 2),
        "last_active_after": round(busy_until - (deadline - seconds), 1),
    }


def run(state_path: Path, rounds: int, out: Path | None, variants: list[str], pg_restore_too: bool) -> None:
    state = json.loads(state_path.read_text())
    cluster = reattach(state)
    cluster.start()
    cluster.execute("ALTER SYSTEM SET log_autovacuum_min_duration = 0")
    cluster.execute("ALTER SYSTEM SET log_temp_files = 0")
    cluster.execute("SELECT pg_reload_conf()")
    results: list[dict[str, Any]] = []
    jobs = [("pg_restore_j2", "")] if pg_restore_too else []
    jobs += [(f"lifeboat[{variant}]", variant) for variant in variants]
    try:
        for number in range(rounds):
            for name, variant in jobs:
                if name == "pg_restore_j2":
                    prepare_pg_restore_target(cluster)
                cluster.drop_database("lifeboat_target")  # no autovacuum of an earlier restore meanwhile
                cluster.execute("CHECKPOINT")
                VARIANT.clear()
                VARIANT.update(v for v in variant.split("+") if v and v != "base")
                restore = pg_restore if name == "pg_restore_j2" else lifeboat_restore
                label = f"{number}-{variant or 'pg_restore'}"
                job = lambda: under_perf(cluster, label, lambda: restore(cluster, state))  # noqa: B023, E731
                row = {"round": number, "what": name, **measured(cluster, job)}
                target = "pgrestore_target" if name == "pg_restore_j2" else "lifeboat_target"
                row["autovacuum"] = sorted(autovacuum_runs(cluster.dsn(target)))
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("tasks", "items")}), flush=True)
                if name == "pg_restore_j2" and AFTERMATH["seconds"]:
                    row["aftermath"] = aftermath(cluster, AFTERMATH["seconds"])
                    print(json.dumps(row["aftermath"]), flush=True)
                if name == "pg_restore_j2":  # its autovacuum aftermath must not run during lifeboat's
                    cluster.drop_database("pgrestore_target")
    finally:
        cluster.stop()
        if out:
            out.write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["setup", "run", "drop"])
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--perf", type=Path, default=None, help="directory for perf record data per restore")
    parser.add_argument(
        "--aftermath", type=float, default=0.0, help="seconds to watch autovacuum after pg_restore"
    )
    parser.add_argument("--no-pg-restore", action="store_true")
    parser.add_argument(
        "--variants",
        default="base",
        help="lifeboat variants, comma-separated, each base or e.g. noanalyze+pmw0",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.state, args.agents, args.workdir)
    elif args.command == "run":
        PERF["dir"] = args.perf
        AFTERMATH["seconds"] = args.aftermath
        run(args.state, args.rounds, args.output, args.variants.split(","), not args.no_pg_restore)
    else:
        state = json.loads(args.state.read_text())
        reattach(state).stop()
        shutil.rmtree(state["data_dir"], ignore_errors=True)


if __name__ == "__main__":
    main()
