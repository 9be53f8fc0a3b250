"""SIGINT and SIGTERM unwind like an error: the same cleanup, then exit 130 or 143.

Python's default SIGTERM kills the process on the spot (a temporary database and a repository
lock stay behind), and its KeyboardInterrupt is turned into a silent exit 0 by typer when not
in standalone mode. Here both signals raise :class:`lifeboat.errors.Interrupted` in the main
thread instead, so every ``finally`` and ``except BaseException`` cleanup runs; signals that
arrive while that cleanup runs are acknowledged and ignored (SIGKILL still stops everything).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from lifeboat.errors import Interrupted

HANDLED = (signal.SIGINT, signal.SIGTERM)
_STILL_CLEANING = b"lifeboat: interrupted again; still cleaning up, please wait (SIGKILL skips the cleanup)\n"


@contextlib.contextmanager
def interruptions_raise() -> Iterator[None]:
    """While inside, the first SIGINT/SIGTERM raises ``Interrupted``; later ones are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    raised: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if raised:
            os.write(2, _STILL_CLEANING)
            return
        raised.append(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
