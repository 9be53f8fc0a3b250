"""Peak RSS of `lifeboat backup` (local directory and S3) on one kept deployment, code trees side by side.

    .venv/bin/python bench/backup_rss.py setup --agents 5000 --state /tmp/rss.json --workdir /tmp/rss
    .venv/bin/python bench/backup_rss.py grow --state /tmp/rss.json --factor 2        # 2x the deployment
    .venv/bin/python bench/backup_rss.py run --state /tmp/rss.json --code before=/tmp/base \\
        --code after=. --rounds 2 --targets local,s3                                  # interleaved
    .venv/bin/python bench/backup_rss.py drop --state /tmp/rss.json

``setup`` builds a durable PostgreSQL 18 cluster with the synthetic deployment (bench/synthetic.py)
and keeps it; ``grow`` adds synthetic parts up to a factor (as bench/backup_restore.py --scales
does). ``run`` restarts the cluster and, ``--rounds`` times, runs a full backup into a fresh
repository with each code tree (``NAME=DIR``: that tree's ``lifeboat`` package is imported, with this
venv's dependencies) against each target: a local directory, or a bucket on a local moto server
serving ranged GETs (bench/moto_ranged.py). Each backup is its own process: wall seconds, own CPU
and peak RSS from ``wait4``, and its RSS sampled every 50 ms (the time of the peak, the RSS at each
tenth of the run). Each repository is deleted after its backup.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from s3_local import MotoServer  # noqa: E402
from synthetic import Scale, generate  # noqa: E402

from lifeboat.sandbox.letta_env import ensure_letta_env  # noqa: E402
from lifeboat.sandbox.letta_schema import create_letta_database, migrate  # noqa: E402
from lifeboat.sandbox.postgres import Cluster, bin_dir, start_cluster  # noqa: E402

PYTHON = str(HERE.parent / ".venv" / "bin" / "python")
PASSPHRASE = "bench-passphrase"


def setup(state_path: Path, agents: int, factor: int, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = start_cluster("pg18", base_dir=workdir, durable=True, keep=True)
    state = {"data_dir": str(cluster.data_dir), "port": cluster.port, "owner_uid": cluster._owner_uid}
    state |= {"agents": agents, "factor": 0}
    try:
        create_letta_database(cluster, "letta")
        migrate(ensure_letta_env(), cluster.dsn("letta"))
        state_path.write_text(json.dumps(state))
        _grow(cluster, state, state_path, factor)
    finally:
        cluster.stop()


def grow(state_path: Path, factor: int) -> None:
    state = json.loads(state_path.read_text())
    cluster = reattach(state)
    cluster.start()
    try:
        _grow(cluster, state, state_path, factor)
    finally:
        cluster.stop()


def _grow(cluster: Cluster, state: dict[str, Any], state_path: Path, factor: int) -> None:
    for part in range(state["factor"], factor):
        generate(cluster.dsn("letta"), Scale(agents=state["agents"]), part=part)
        state["factor"] = part + 1
        state_path.write_text(json.dumps(state))
    cluster.execute("VACUUM ANALYZE", "letta")
    print(json.dumps(state), flush=True)


def reattach(state: dict[str, Any]) -> Cluster:
    return Cluster(
        "pg18", bin_dir("pg18"), Path(state["data_dir"]), state["port"], keep=True,
        _owner_uid=state["owner_uid"],
    )  # fmt: skip


def compile_tree(tree: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(tree / "lifeboat")], env=env, check=False,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def lifeboat(*args: str) -> list[str]:
    """The CLI of the tree it runs in (run it with that tree as its working directory)."""
    return [PYTHON, "-m", "lifeboat", *args]


def sampled(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``command`` (cwd ``cwd``: its ``lifeboat`` is imported); wall, CPU, peak RSS, RSS over time."""
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        done = threading.Event()
        sampler = threading.Thread(target=_sample, args=(process.pid, started, samples, done))
        sampler.start()
        _pid, status, usage = os.wait4(process.pid, 0)
        done.set()
        sampler.join()
        seconds = time.monotonic() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed: {stderr[-2000:]}")
    peak_at = max(samples, key=lambda s: s[1])[0] if samples else 0.0
    tenths = [max((kb for t, kb in samples if t <= seconds * (i + 1) / 10), default=0) for i in range(10)]
    return {
        "seconds": round(seconds, 2),
        "cpu": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_at_share": round(peak_at / seconds, 2),
        "rss_by_tenth_mb": [round(kb / 1024) for kb in tenths],
    }


def _sample(pid: int, started: float, samples: list[tuple[float, int]], done: threading.Event) -> None:
    status = Path(f"/proc/{pid}/status")
    while not done.wait(0.05):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    samples.append((time.monotonic() - started, int(line.split()[1])))
        except OSError:
            return


def run(
    state_path: Path,
    codes: list[tuple[str, Path, dict[str, str]]],
    rounds: int,
    targets: list[str],
    out: Path | None,
) -> None:
    state = json.loads(state_path.read_text())
    cluster = reattach(state)
    cluster.start()
    for _name, tree, _env in codes:
        compile_tree(tree)
    env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE}
    env.pop("PYTHONPATH", None)
    results: list[dict[str, Any]] = []
    work = Path(state["data_dir"]) / "rss-work"
    try:
        with MotoServer([sys.executable, str(HERE / "moto_ranged.py")]) as s3:
            for number in range(rounds):
                for target in targets:
                    for name, tree, extra in codes:
                        row = {"round": number, "code": name, "target": target, "load": os.getloadavg()[0]}
                        row |= backup_once(cluster, s3, target, tree, env | extra, work)
                        results.append(row)
                        print(json.dumps(row), flush=True)
                        if out:
                            out.write_text(json.dumps({"state": state, "results": results}, indent=1))
    finally:
        cluster.stop()


def backup_once(
    cluster: Cluster, s3: MotoServer, target: str, tree: Path, env: dict[str, str], work: Path
) -> dict[str, Any]:
    if target == "s3":
        bucket = s3.new_bucket()
        repo, env = f"s3://{bucket}/repo", s3.env(env)
    else:
        shutil.rmtree(work, ignore_errors=True)
        repo = str(work / "repo")
    subprocess.run(lifeboat("init", "--repo", repo), cwd=tree, env=env, check=True, capture_output=True)
    try:
        return sampled(
            lifeboat("backup", "--db", cluster.dsn("letta"), "--jobs", "2", "--repo", repo), tree, env
        )
    finally:
        if target == "s3":
            empty_bucket(s3, bucket)
        else:
            shutil.rmtree(work, ignore_errors=True)


def empty_bucket(s3: MotoServer, bucket: str) -> None:
    """Delete the bucket's objects, so the moto server's memory does not grow round after round."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint, **_credentials())
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


def _credentials() -> dict[str, str]:
    from s3_local import CREDENTIALS

    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def drop(state_path: Path) -> None:
    state = json.loads(state_path.read_text())
    cluster = reattach(state)
    cluster.keep = False
    cluster.stop()
    state_path.unlink()


def code_spec(spec: str) -> tuple[str, Path, dict[str, str]]:
    """``NAME=DIR`` or ``NAME=DIR@VAR=VALUE,...`` (environment variables for that variant's process)."""
    name, rest = spec.split("=", 1)
    tree, _, extra = rest.partition("@")
    env = dict(item.split("=", 1) for item in extra.split(",") if item)
    return name, Path(tree).resolve(), env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup")
    p_setup.add_argument("--agents", type=int, default=Scale.agents)
    p_setup.add_argument("--factor", type=int, default=1)
    p_setup.add_argument("--workdir", type=Path, required=True)
    p_grow = sub.add_parser("grow")
    p_grow.add_argument("--factor", type=int, required=True)
    p_run = sub.add_parser("run")
    p_run.add_argument(
        "--code", action="append", required=True,
        help="NAME=DIR of a lifeboat checkout, optionally @VAR=VALUE,... for its environment",
    )  # fmt: skip
    p_run.add_argument("--rounds", type=int, default=1)
    p_run.add_argument("--targets", default="local,s3")
    p_run.add_argument("--output", type=Path)
    sub.add_parser("drop")
    for p in (p_setup, p_grow, p_run, sub.choices["drop"]):
        p.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.state, args.agents, args.factor, args.workdir)
    elif args.command == "grow":
        grow(args.state, args.factor)
    elif args.command == "run":
        codes = [code_spec(spec) for spec in args.code]
        run(args.state, codes, args.rounds, args.targets.split(","), args.output)
    else:
        drop(args.state)


if __name__ == "__main__":
    main()
