"""Binary COPY of the vector tables against COPY TEXT, end to end, on one synthetic deployment.

    .venv/bin/python bench/binary_copy.py --agents 1000 --rounds 2

Builds the deployment of bench/backup_restore.py (PostgreSQL 18, Letta 0.16.8's schema, filled
by bench/synthetic.py), then, ``--rounds`` times and interleaved (so a busy machine spoils both
alike), backs it up into a fresh repository and restores that into a new database, once with the
vector tables stored binary (the default) and once with ``LIFEBOAT_COPY_BINARY=0`` (every table
COPY TEXT, as before). Each command is its own process: wall seconds, its own CPU (client) and
the PostgreSQL server's CPU over the same interval. Prints JSON with the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from backup_restore import LIFEBOAT, SERVER, build, machine, timed  # noqa: E402
from synthetic import Scale  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from lifeboat.sandbox.postgres import start_cluster  # noqa: E402


def one_round(dsn: str, cluster: Any, workdir: Path, mode: str, number: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "LIFEBOAT_PASSWORD": "bench-passphrase",
        "LIFEBOAT_COPY_BINARY": "1" if mode == "binary" else "0",
    }
    repo = str(workdir / f"repo-{mode}-{number}")
    subprocess.run([LIFEBOAT, "init", "--repo", repo], env=env, check=True, capture_output=True)
    backup = timed([LIFEBOAT, "--json", "backup", "--repo", repo, "--db", dsn, "--jobs", "2"], env)
    target = cluster.dsn(f"target_{mode}_{number}")
    restore = timed([LIFEBOAT, "--json", "restore", "latest", "--repo", repo, "--target", target], env)
    cluster.execute(f"DROP DATABASE target_{mode}_{number}", "postgres")
    stored = sum(f.stat().st_size for f in Path(repo).rglob("*") if f.is_file())
    backup.pop("output", None)
    restore.pop("output", None)
    return {"backup": backup, "restore": restore, "repo_bytes": stored}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    scale = Scale(agents=args.agents)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lifeboat-bincopy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": machine(),
        "scale": scale.__dict__,
        "runs": {"text": [], "binary": []},
    }
    with start_cluster("pg18", base_dir=workdir, durable=True) as cluster:
        SERVER["pid"] = int((cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        dsn, counts = build(cluster, scale)
        results["dataset"] = counts
        results["load_average_before"] = [round(v, 2) for v in os.getloadavg()]
        for number in range(args.rounds):
            for mode in ("text", "binary") if number % 2 == 0 else ("binary", "text"):
                results["runs"][mode].append(one_round(dsn, cluster, workdir, mode, number))
                print(mode, json.dumps(results["runs"][mode][-1]), file=sys.stderr, flush=True)
        results["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    results["median"] = {
        mode: {
            f"{phase}_{what}": statistics.median(run[phase][what] for run in runs)
            for phase in ("backup", "restore")
            for what in ("seconds", "client_cpu", "server_cpu")
        }
        | {"repo_bytes": statistics.median(run["repo_bytes"] for run in runs)}
        for mode, runs in results["runs"].items()
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
