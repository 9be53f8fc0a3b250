"""Peak RSS (and time) of a full backup, a full restore and an incremental backup, for two versions
of lifeboat on one kept deployment, interleaved.

    .venv/bin/python bench/restore_phases.py setup --agents 20000 --state /tmp/S.json --workdir /tmp/w
    .venv/bin/python bench/memory_ab.py --state /tmp/S.json --code A=main~3 --code B=main --rounds 2

Each ``--code NAME=REV`` is a git revision (``.``: the work tree), exported and compiled to bytecode
(``bench/incremental_ab.py``'s ``export``). Per round and version: a full backup into a fresh
repository, a full restore of it into a new database (dropped after), and, from round 0's
repository after one ``bench/changes.py`` change (made once, before the first incremental), an
incremental backup from a fresh copy. Every command is a CLI process: wall seconds, its own CPU,
the server's CPU and its peak RSS (``wait4``). ``--what`` leaves some out. The deployment keeps the
change.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from backup_restore import timed
from incremental_ab import PYTHON, backup, comparison, init, versions_parser
from restore_phases import PASSPHRASE

RESTORED = "memory_ab_restored"
KINDS = ("full", "restore", "incremental")


def restore(code: Path, repo: Path, target: str) -> dict[str, Any]:
    env = {**os.environ, "LIFEBOAT_PASSWORD": PASSPHRASE, "PYTHONPATH": str(code)}
    command = [PYTHON, "-P", "-m", "lifeboat", "--json", "restore", "--repo", str(repo), "--target", target]
    result = timed(command, env)
    result.pop("output", None)
    result["load"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = versions_parser(__doc__)
    parser.add_argument(
        "--what", default=",".join(KINDS), help=f"a comma-separated subset of {','.join(KINDS)}"
    )
    parser.add_argument("--output", type=Path, default=None)
    options = parser.parse_args()
    what = set(options.what.split(","))
    if options.rounds < 1 or not what or not what <= set(KINDS):
        parser.error(f"--rounds must be 1 or more and --what a subset of {','.join(KINDS)}")
    with comparison(options) as run:
        for number in range(options.rounds):
            for name, code in run.codes.items():
                repo = run.work / f"parent-{name}" if number == 0 else run.work / f"full-{name}"
                shutil.rmtree(repo, ignore_errors=True)
                init(code, repo)
                full = backup(code, repo, run.dsn, "--full")
                if "full" in what:
                    run.record({"round": number, "code": name, "what": "full", **full})
                if "restore" in what:
                    run.cluster.execute(f"DROP DATABASE IF EXISTS {RESTORED}")
                    run.record({"round": number, "code": name, "what": "restore",
                                **restore(code, repo, run.cluster.dsn(RESTORED))})  # fmt: skip
                    run.cluster.execute(f"DROP DATABASE IF EXISTS {RESTORED}")
        if "incremental" in what:
            run.incrementals(options.rounds, lambda name: run.work / f"parent-{name}")


if __name__ == "__main__":
    main()
