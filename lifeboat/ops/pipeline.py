"""Producer and consumer on two threads, for streaming work whose two halves release the GIL."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


def pipelined(items: Iterator[T], consume: Callable[[T], None], depth: int = 4) -> None:
    """Run ``consume`` on a second thread while this one keeps producing ``items``.

    The producer here is a COPY reading from the server (waiting on I/O, GIL released) and the
    consumer chunks, hashes, compresses and seals (C code that releases the GIL too), so the two
    overlap. The bounded queue keeps memory at ``depth`` batches.
    """
    pending: queue.Queue[T | None] = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []

    def drain() -> None:
        while (item := pending.get()) is not None:
            if failure:
                continue  # keep draining so the producer never blocks on a dead consumer
            try:
                consume(item)
            except BaseException as exc:
                failure.append(exc)

    worker = threading.Thread(target=drain, name="lifeboat-store", daemon=True)
    worker.start()
    try:
        for item in items:
            if failure:
                break
            pending.put(item)
    finally:
        pending.put(None)
        worker.join()
    if failure:
        raise failure[0]
