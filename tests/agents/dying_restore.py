"""The fault tests' victim: run the real CLI (``lifeboat <args>``) with an applier that fails, or
SIGKILLs its own process, once ``N`` tables have been written inside the restore's transaction.

    python tests/agents/dying_restore.py N error|kill restore --repo ... --agent ... --db ...
"""

from __future__ import annotations

import os
import signal
import sys

from lifeboat.errors import LifeboatError
from lifeboat.ops.agent_restore import apply, run


class DyingApplier(apply.Applier):
    """An applier that fails (``error``) or is killed (``kill``) after ``fail_after`` tables."""

    fail_after = 0
    how = "error"

    def table_applied(self, table: str) -> None:
        super().table_applied(table)
        self.applied = getattr(self, "applied", 0) + 1
        if self.applied < self.fail_after:
            return
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise LifeboatError(f"injected fault after applying {table}")


def main(argv: list[str]) -> None:
    DyingApplier.fail_after, DyingApplier.how = int(argv[0]), argv[1]
    run.Applier = DyingApplier  # type: ignore[misc]  # the operation builds its applier from here
    sys.argv = ["lifeboat", *argv[2:]]
    from lifeboat.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])
