"""``restore --upgrade``: print the migration plan first, restore, migrate, switch, report."""

from __future__ import annotations

from typing import Any

from lifeboat import settings
from lifeboat.cli import output
from lifeboat.cli.progress import restore_progress
from lifeboat.ops.restore import Trust
from lifeboat.ops.upgrade import UpgradePlan, run_upgrade_restore
from lifeboat.repo.repository import Repository


def announce(plan: UpgradePlan) -> None:
    """The plan goes to stderr before anything is created (stdout stays clean for --json)."""
    for line in plan.lines():  # one line each, verbatim (no wrapping, no rich markup)
        output.err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def announce_line(line: str) -> None:
    output.err_console.print(line, soft_wrap=True, markup=False, highlight=False)


def restore_with_upgrade(
    repository: Repository,
    snapshot: str,
    target_dsn: str,
    target: str,
    encryption_key: str | None,
    force: bool,
    jobs: int,
    trust: Trust = Trust(),  # noqa: B008 (frozen)
) -> None:
    with restore_progress("restore", repository, snapshot) as bar:
        result = run_upgrade_restore(
            repository,
            snapshot,
            target_dsn,
            target,
            announce=announce,
            encryption_key=encryption_key or None,
            force=force,
            jobs=jobs,
            redis=settings.letta_redis(),
            progress=bar.advance,
            trust=trust,
            notify=None if output.json_mode() else announce_line,
        )

    def render(s: dict[str, Any]) -> None:
        up = s["upgrade"]
        output.console.print(
            f"restored snapshot [bold]{s['snapshot'][:8]}[/] into database [bold]{s['database']}[/] and "
            f"upgraded it from Letta {up['from_release']} ({up['from_revision']}) to {up['to_release']} "
            f"({up['to_revision']}): {up['ran']} migration(s) in {up['seconds']:.1f} s, "
            f"{s['seconds']:.1f} s in all"
        )
        if s["safety_snapshot"]:
            output.console.print(
                f"the replaced database was saved first as snapshot {s['safety_snapshot'][:8]}"
            )
        for warning in s["warnings"]:
            output.console.print(f"[yellow]warning:[/] {warning}")

    output.emit(result.summary(), render)
