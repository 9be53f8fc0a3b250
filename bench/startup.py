"""CLI start-up cost per command: wall and CPU time (interleaved runs) and import time.

    .venv/bin/python bench/startup.py                          # cheap commands, this tree
    .venv/bin/python bench/startup.py --runs 7 --db            # + unchanged backup, one-agent restore
    .venv/bin/python bench/startup.py --tree before=/tmp/base --tree after=.   # compare two trees
    .venv/bin/python bench/startup.py --bytecode source        # compile every module on every run

Each command runs as ``python -c "from lifeboat.cli import main; main()" ARGS`` (what the console
script does) in the tree, with ``PYTHONPATH`` set to it, so two source trees are compared with the
same interpreter and dependencies. Runs are interleaved (command × tree, round after round) so a
shared machine's load spreads over all of them; the load averages at the start and end are printed.

``--bytecode cached`` (the default) is an installed lifeboat: modules load from ``.pyc`` files
(pip compiles them at install; Python writes them on first import), kept here under a temporary
``PYTHONPYCACHEPREFIX`` that one warm-up run per command fills. ``--bytecode source`` is a machine
with ``PYTHONDONTWRITEBYTECODE=1`` and no ``.pyc`` (a ``uv sync`` venv): every module is compiled on
every run, which costs about as much again as the imports themselves.

``--db`` starts a throwaway cluster, loads the cached test deployment (lifeboat.sandbox), backs it
up once, then also times an unchanged backup and a one-agent restore in place (both ``--json``).
Import time is the sum of the top-level imports of the quickest of three ``-X importtime`` runs of
each command; the slowest packages (their own time, summed per top-level package) are listed with ``--top``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ENTRY = "from lifeboat.cli import main; main()"
CHEAP = (
    ("--version",),
    ("--help",),
    ("snapshots", "--help"),
    ("restore", "--help"),
    ("nosuchcommand",),
)
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def run_once(
    tree: Path, args: tuple[str, ...], env: dict[str, str], importtime: bool = False
) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) of one run of ``lifeboat ARGS`` from ``tree``, and its stderr."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", ENTRY, *args]
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(  # in the tree: ``-c`` puts the working directory first on sys.path
            command, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL, stderr=err
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):  # 2: the usage error of an unknown command
        raise SystemExit(f"lifeboat {' '.join(args)} failed ({code}): {stderr[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, stderr


def import_profile(stderr: str) -> tuple[float, dict[str, float]]:
    """Total import ms (top-level cumulative) and self ms per top-level package."""
    total = 0.0
    per_package: dict[str, float] = defaultdict(float)
    for own, cumulative, indent, name in IMPORT_LINE.findall(stderr):
        per_package[name.split(".")[0]] += int(own) / 1000
        if len(indent) == 1:
            total += int(cumulative) / 1000
    return total, per_package


@contextlib.contextmanager
def deployment(env: dict[str, str]) -> Iterator[list[tuple[str, ...]]]:
    """A loaded test deployment and a repository holding one backup of it: the commands to time."""
    import psycopg

    from lifeboat.sandbox.deployment import load_deployment
    from lifeboat.sandbox.postgres import running_cluster

    with running_cluster() as cluster, tempfile.TemporaryDirectory(prefix="lifeboat-startup-") as work:
        database = load_deployment(cluster, "startup_bench")
        repo = str(Path(work) / "repo")
        entry = [sys.executable, "-c", ENTRY]
        subprocess.run([*entry, "init", "--repo", repo], env=env, check=True, capture_output=True)
        backup = ("--json", "backup", "--repo", repo, "--db", database.dsn)
        subprocess.run([*entry, *backup], env=env, check=True, capture_output=True)
        with psycopg.connect(database.admin_dsn) as conn:
            row = conn.execute("SELECT id FROM letta.agents ORDER BY id LIMIT 1").fetchone()
        assert row is not None
        agent = ("--agent", row[0], "--db", database.admin_dsn, "--force")
        yield [("--json", "snapshots", "--repo", repo), backup, ("--json", "restore", "--repo", repo, *agent)]


def measure(
    trees: dict[str, Path], commands: list[tuple[str, ...]], runs: int, env: dict[str, str], top: int
) -> None:
    if "PYTHONPYCACHEPREFIX" in env:  # warm the bytecode cache: one run of each
        for args in commands:
            for tree in trees.values():
                run_once(tree, args, env)
    load_before = os.getloadavg()
    times: dict[tuple[tuple[str, ...], str], list[tuple[float, float]]] = defaultdict(list)
    for _ in range(runs):
        for args in commands:
            for label, tree in trees.items():
                times[args, label].append(run_once(tree, args, env)[:2])
    imports = {  # the quickest of three -X importtime runs (the least disturbed by the machine's load)
        (args, label): min(
            (import_profile(run_once(tree, args, env, importtime=True)[2]) for _ in range(3)),
            key=lambda profile: profile[0],
        )
        for args in commands
        for label, tree in trees.items()
    }
    load_after = os.getloadavg()
    print(f"load average before {', '.join(f'{v:.2f}' for v in load_before)}; "
          f"after {', '.join(f'{v:.2f}' for v in load_after)}; {runs} runs each, interleaved")  # fmt: skip
    print(f"{'command':<36} {'tree':<8} {'wall median':>11} {'min':>6} {'cpu median':>10} {'imports ms':>10}")
    for args in commands:
        shown = " ".join(a if len(a) < 24 else a[:8] + "…" for a in args)
        for label in trees:
            walls = [wall for wall, _ in times[args, label]]
            cpu = statistics.median(cpu for _, cpu in times[args, label])
            total, per_package = imports[args, label]
            print(
                f"{shown[:36]:<36} {label:<8} {statistics.median(walls):>11.3f} {min(walls):>6.3f} "
                f"{cpu:>10.3f} {total:>10.0f}"
            )
            if top:
                slowest = sorted(per_package.items(), key=lambda item: -item[1])[:top]
                print(" " * 46 + ", ".join(f"{name} {ms:.0f}" for name, ms in slowest))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--tree", action="append", default=[], metavar="LABEL=PATH", help="a source tree to time (repeatable)"
    )
    parser.add_argument("--db", action="store_true", help="also an unchanged backup and a one-agent restore")
    parser.add_argument("--top", type=int, default=0, help="list the N slowest packages to import")
    parser.add_argument(
        "--bytecode",
        choices=("cached", "source"),
        default="cached",
        help="modules from .pyc files (an installed lifeboat) or compiled on every run",
    )
    options = parser.parse_args()
    trees = {label: Path(path).resolve() for label, _, path in (t.partition("=") for t in options.tree)}
    trees = trees or {"this": HERE.parent}
    env = {**os.environ, "LIFEBOAT_PASSWORD": "startup-bench"}
    env.pop("LIFEBOAT_REPOSITORY", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    commands = [tuple(c) for c in CHEAP]
    print(f"bytecode: {options.bytecode}")
    with contextlib.ExitStack() as stack:
        if options.bytecode == "cached":
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="pyc-"))
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        if options.db:
            commands += stack.enter_context(deployment(env))
        measure(trees, commands, options.runs, env, top=options.top)


if __name__ == "__main__":
    main()
