"""Rich progress bars on stderr for long work (silent in --json mode and when not a terminal).

rich is imported only when a bar is drawn.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lifeboat.cli import output

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ByteProgress:
    """``advance(n)`` from any thread (rich's Progress locks internally); ``set_total`` once known."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def absolute(self, done: int, total: int) -> None:
        """Progress given as (done, total) bytes, from any thread."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)

    def note(self, line: str) -> None:
        """A line above the bar (e.g. what a backup waits for); only where the bar shows."""
        if self._progress is not None:
            from rich.markup import escape

            self._progress.console.print(f"[yellow]{escape(line)}[/]")

    def set_total(self, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)


@contextlib.contextmanager
def byte_progress(description: str, total: int | None = None) -> Iterator[ByteProgress]:
    if output.json_mode() or not output.err_console.is_terminal:
        yield ByteProgress()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.err_console, transient=True) as progress:
        yield ByteProgress(progress, progress.add_task(description, total=total))


def restore_progress(
    description: str, repository: Any, ref: str
) -> contextlib.AbstractContextManager[ByteProgress]:
    """A bar for restoring snapshot ``ref``: its true total (the COPY text it holds), and its row
    count in the description, both from the manifest."""
    if output.json_mode() or not output.err_console.is_terminal:
        return byte_progress(description)
    snapshot = repository.load_snapshot(ref)
    rows = sum(stream.records for stream in snapshot.streams)
    return byte_progress(f"{description} {snapshot.short_id} ({rows:,} rows)", total=snapshot.raw_size())
