"""Full and incremental backup of two versions of lifeboat on one kept deployment, interleaved.

    .venv/bin/python bench/restore_phases.py setup --agents 5000 --state /tmp/S.json --workdir /tmp/w
    .venv/bin/python bench/incremental_ab.py --state /tmp/S.json --code A=main --code B=. --rounds 2

Each ``--code NAME=REV`` is a git revision of this repository (``.``: the work tree as it is),
exported to a directory and compiled to bytecode. Per version: a fresh repository, ``--rounds``
full backups into fresh repositories (the first is kept as the parent), then ``bench/changes.py``
changes every 100th agent once, and ``--rounds`` incremental backups, each from a fresh copy of
that version's parent repository. Versions alternate within each round. Each backup is a CLI
process: wall seconds, its own CPU (user + system), the server's CPU (the postmaster's reaped
backends), peak RSS and the backup's JSON summary. Once per version, the incremental is also run
in-process on another copy to count the blobs it decoded (read back from the repository) and
their bytes. The deployment keeps the change: run ``setup`` again for another comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import backup_restore  # noqa: E402
from backup_restore import timed  # noqa: E402
from changes import change_agents  # noqa: E402
from restore_phases import PASSPHRASE, reattach  # noqa: E402

ROOT = HERE.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")

# Run inside the measured version: an incremental backup with every blob read counted.
COUNTING = """
import json, sys
from lifeboat.repo.repository import Repository
from lifeboat.ops.backup import run_backup
reads = {"blobs": 0, "bytes": 0}
original = Repository.read_blob
def counted(self, blob_id, **kwargs):
    data = original(self, blob_id, **kwargs)
    reads["blobs"] += 1
    reads["bytes"] += len(data)
    return data
Repository.read_blob = counted
repo = Repository.open(sys.argv[1], sys.argv[3])
result = run_backup(repo, sys.argv[2])
stats = result.stats
open(sys.argv[4], "w").write(json.dumps({"decoded": reads, "blobs_new": stats.blobs_new, "raw_bytes_new": stats.raw_bytes_new,
                  "incremental": result.incremental.summary()}))
"""


def export(name: str, revision: str, into: Path) -> Path:
    """The revision's ``lifeboat`` package in its own directory, compiled to bytecode."""
    target = into / name
    target.mkdir(parents=True)
    if revision == ".":
        shutil.copytree(ROOT / "lifeboat", target / "lifeboat")
    else:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, "lifeboat"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(target / "lifeboat")], check=True, env=env)
    return target


def versions_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every comparison of versions on a kept deployment takes."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--code", action="append", required=True, help="NAME=REV (REV '.': the work tree)")
    parser.add_argument("--rounds", type=int, default=2)
    return parser


@dataclass
class Comparison:
    """Versions of lifeboat exported next to a started kept deployment (:func:`comparison`)."""

    cluster: Any
    dsn: str
    work: Path  # scratch directory, removed at the end
    codes: dict[str, Path]  # version name -> exported package directory
    results: list[dict[str, Any]] = field(default_factory=list)

    def record(self, row: dict[str, Any]) -> None:
        """Keep a result row and print it as one JSON line."""
        self.results.append(row)
        print(json.dumps(row), flush=True)

    def incrementals(self, rounds: int, parent: Callable[[str], Path]) -> None:
        """Change 1 % of the agents once, then ``rounds`` incremental backups per version, each
        from a fresh copy of that version's ``parent(name)`` repository, versions alternating."""
        self.record({"what": "change", **change_agents(self.dsn)})
        self.cluster.execute("CHECKPOINT")
        for number in range(rounds):
            for name, code in self.codes.items():
                repo = fresh_copy(parent(name), self.work / f"incr-{name}")
                self.record(
                    {"round": number, "code": name, "what": "incremental", **backup(code, repo, self.dsn)}
                )


@contextlib.contextmanager
def comparison(options: argparse.Namespace) -> Iterator[Comparison]:
    """The kept deployment of ``--state`` started (dependencies compiled, as an installed lifeboat
    has them; the server's CPU counted) and each ``--code`` exported; at the end the server is
    stopped and the results written to ``--output``, also after a failure."""
    backup_restore.compile_bytecode()
    state = json.loads(options.state.read_text())
    cluster = reattach(state)
    cluster.start()
    backup_restore.SERVER["pid"] = int(
        (cluster.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]
    )
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(dir=Path(state["data_dir"]).parent) as scratch:
            work = Path(scratch)
            codes = {name: export(name, rev, work) for name, rev in (c.split("=", 1) for c in options.code)}
            yield Comparison(cluster, cluster.dsn("letta"), work, codes, results)
    finally:
        cluster.stop()
        if options.output:
            options.output.write_text(json.dumps(results, indent=1))


# NAME -> extra environment of that version's backups (``--env NAME=VAR=VALUE``)
EXTRA_ENV: dict[str, dict[str, str]] = {}


def backup(code: Path, repo: Path, dsn: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, "PYTHONPATH": str(code)}
    env.update(EXTRA_ENV.get(code.name, {}))
    command = [
        PYTHON,
        "-P",  # not the current directory's lifeboat: the version's
        "-m",
        "lifeboat",
        "--json",
        "backup",
        "--db",
        dsn,
        "--jobs",
        "2",
        "--repo",
        str(repo),
        *extra,
    ]
    result = timed(command, env)
    summary = result.pop("output")
    result["load"] = round(os.getloadavg()[0], 2)
    for name in ("blobs_new", "blobs_deduplicated", "bytes_added", "raw_bytes"):
        result[name] = summary.get(name)
    return result


def init(code: Path, repo: Path) -> None:
    env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, "PYTHONPATH": str(code)}
    subprocess.run(
        [PYTHON, "-P", "-m", "lifeboat", "init", "--repo", str(repo)],
        env=env,
        check=True,
        capture_output=True,
    )


def fresh_copy(parent: Path, repo: Path) -> Path:
    """A copy of the parent repository made of hard links: a backup only adds files and replaces
    whole ones (written aside, then renamed), so the parent is never changed through them. A real
    copy wrote ~350 MB before each timed incremental, still going to disk while it ran: interleaved
    runs of one version then spread over 0.31 s instead of 0.13-0.16 s (session 10)."""
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(parent, repo, copy_function=os.link)
    return repo


def main() -> None:
    parser = versions_parser(__doc__)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        help="NAME=VAR=VALUE: set VAR for version NAME's backups (e.g. B=PGOPTIONS='-c work_mem=64MB')",
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--profile", type=Path, default=None, help="directory: py-spy stacks of each counted run"
    )
    options = parser.parse_args()
    for setting in options.env:
        name, variable, value = setting.split("=", 2)
        EXTRA_ENV.setdefault(name, {})[variable] = value
    with comparison(options) as run:
        work, dsn = run.work, run.dsn
        parents = {name: work / f"parent-{name}" for name in run.codes}
        for number in range(options.rounds):
            for name, code in run.codes.items():
                repo = parents[name] if number == 0 else work / f"full-{name}"
                shutil.rmtree(repo, ignore_errors=True)
                init(code, repo)
                run.record({"round": number, "code": name, "what": "full", **backup(code, repo, dsn)})
        run.incrementals(options.rounds, parents.__getitem__)
        for name, code in run.codes.items():
            repo = fresh_copy(parents[name], work / f"incr-{name}")
            env = {**os.environ, "PYTHONPATH": str(code)}
            command = [
                PYTHON,
                "-P",
                "-c",
                COUNTING,
                str(repo),
                dsn,
                PASSPHRASE,
                str(work / "counted.json"),
            ]
            if options.profile is not None:
                options.profile.mkdir(parents=True, exist_ok=True)
                spy = str(ROOT / ".venv" / "bin" / "py-spy")
                out = str(options.profile / f"incremental-{name}.txt")
                command = [
                    spy,
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "--output",
                    out,
                    "--",
                    *command,
                ]
            subprocess.run(command, env=env, check=True, capture_output=True)
            counts = json.loads((work / "counted.json").read_text())
            run.record({"code": name, "what": "incremental counted", **counts})


if __name__ == "__main__":
    main()
