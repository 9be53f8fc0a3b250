"""Summarize py-spy's collapsed stacks (``bench/backup_restore.py --profile DIR``): where the time goes.

    .venv/bin/python bench/profile_summary.py DIR/restore.txt [--top 25]

Prints, per function, the share of samples in which it is on the stack (inclusive) and at the
top of the stack (self), over all threads. Idle threads waiting on a lock or a queue show up as
``wait``/``acquire``/``select``; the summary says how many samples were such waits.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# Top-of-stack functions that mean "this thread is idle": waiting for another thread or for the
# server (psycopg's Connection.wait, select/poll on the socket).
IDLE = {
    "Condition.wait",
    "Condition._acquire_restore",
    "Thread._wait_for_tstate_lock",
    "Event.wait",
    "_worker",
}
SERVER = {"Connection.wait", "poll", "select", "wait_c", "wait"}


def summarize(path: Path, top: int) -> str:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = waiting = server = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")[1:]]  # the first is the process/thread
        total += count
        current = frames[-1].split(" (")[0] if frames else ""
        if current in IDLE:
            waiting += count
            continue
        if current in SERVER:
            server += count
            continue
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            leaf[frames[-1]] += count
    busy = max(1, total - waiting - server)
    lines = [
        f"{path.name}: {total} thread samples: {waiting} idle (waiting for another thread), "
        f"{server} waiting for the server, {busy} on the CPU (shares below are of these)"
    ]
    lines.append(f"{'self %':>7} {'incl %':>7}  function")
    for frame, count in leaf.most_common(top):
        lines.append(f"{100 * count / busy:7.1f} {100 * inclusive[frame] / busy:7.1f}  {frame}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``func (path/to/module.py:line)`` -> ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0].rstrip(")")
    return f"{name} ({module})" if module else name


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stacks", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.stacks:
        print(summarize(path, args.top))


if __name__ == "__main__":
    main()
