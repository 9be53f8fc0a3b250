"""The backup's copy runs with fewer cycle-collector passes and gives the collector back as it was."""

from __future__ import annotations

import gc
import threading

from lifeboat.ops.backup import fewer_gc_passes
from lifeboat.repo.heap import GC_GEN0_THRESHOLD


def test_the_collector_is_restored_after_nested_and_concurrent_copies() -> None:
    before = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()

    def other_copy() -> None:
        with fewer_gc_passes():
            entered.set()
            release.wait(10)

    with fewer_gc_passes():
        assert gc.get_threshold()[0] >= GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
        worker = threading.Thread(target=other_copy)
        worker.start()
        assert entered.wait(10)
    assert gc.get_threshold()[0] >= GC_GEN0_THRESHOLD  # the other copy still runs
    release.set()
    worker.join(10)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_exception_still_restores_the_collector() -> None:
    before = gc.get_threshold()
    try:
        with fewer_gc_passes():
            raise RuntimeError("copy failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
