"""verify --against a fully restored database, next to the restore it checks, in one run.

    .venv/bin/python bench/verify_against.py --agents 5000 --output results.json   # ~2.4 GB

Builds the same synthetic deployment as bench/backup_restore.py (throwaway PostgreSQL 18,
durable settings, Letta 0.16.8's migrated schema, bench/synthetic.py), backs it up, restores it
into a new database with ``lifeboat restore``, then times ``lifeboat verify --against`` of that
restored database (2 jobs) — each as its own process, peak RSS from wait4. The targets: verify
--against under half the full restore's time, peak RSS under 300 MB, and an "equal" verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from backup_restore import LIFEBOAT, build, machine, timed  # noqa: E402
from synthetic import Scale  # noqa: E402

from lifeboat.sandbox.postgres import start_cluster  # noqa: E402


def run(scale: Scale, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "LIFEBOAT_PASSWORD": "bench-passphrase"}
    results: dict[str, Any] = {"machine": machine(), "scale": scale.__dict__}
    with start_cluster("pg18", base_dir=workdir, durable=True) as cluster:
        started = time.monotonic()
        dsn, counts = build(cluster, scale)
        results["dataset"] = counts | {"build_seconds": round(time.monotonic() - started, 1)}
        repo = str(workdir / "repo")
        subprocess.run([LIFEBOAT, "init", "--repo", repo], env=env, check=True, capture_output=True)
        r = results["runs"] = {}
        r["lifeboat_backup"] = timed(
            [LIFEBOAT, "--json", "backup", "--repo", repo, "--db", dsn, "--jobs", "2"], env
        )
        target = cluster.dsn("lifeboat_target")
        r["lifeboat_restore"] = timed(
            [LIFEBOAT, "restore", "latest", "--repo", repo, "--target", target], env
        )
        compared = timed(
            [
                LIFEBOAT,
                "--json",
                "verify",
                "--against",
                "latest",
                "--repo",
                repo,
                "--db",
                target,
                "--jobs",
                "2",
            ],
            env,
        )
        output = compared.pop("output")
        compared.update({"equal": output["equal"], "summary": output["summary"]})
        r["lifeboat_verify_against"] = compared
    restore, against = r["lifeboat_restore"], r["lifeboat_verify_against"]
    results["ratios"] = {"verify_against_vs_restore": round(against["seconds"] / restore["seconds"], 3)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=Scale.agents)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="write the JSON results here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lifeboat-bench-", dir=args.workdir))
    try:
        results = run(Scale(agents=args.agents), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
