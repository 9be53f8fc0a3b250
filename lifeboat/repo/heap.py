"""Keeping the C heap small: at most two glibc arenas for the process (:func:`use_compact_heap`),
and free memory given back (``malloc_trim``); no-ops with another C library.

A backup allocates and frees buffers of up to a few MB at a high rate on several threads (COPY
batches, blob plaintexts, compressed and sealed bodies) while others stay alive, and glibc keeps the
pages of the holes this leaves. At 20,000 agents that was 30-40 MB of the backup's peak RSS, most
of it at the end, when the manifest is written into fresh memory. The writer gives the free pages
back after each pack it stores (every few seconds, ~1 ms each). Python's own heap: the cycle
collector runs far less often in the CLI's process and during a backup's copies
(:func:`fewer_collections`).
"""

from __future__ import annotations

import functools
import gc
import os
from typing import Any

# A young pass of Python's cycle collector every this many new containers (the default is 700).
GC_GEN0_THRESHOLD = 50_000

M_ARENA_MAX = -8  # mallopt(3)'s parameter number (glibc's malloc.h)
ARENA_MAX = 2


def use_compact_heap() -> bool:
    """Let this process's threads share at most two glibc arenas; True when it was set.

    By default glibc gives each thread that allocates its own arena (up to 8 per core), and the
    holes each arena is left with stay resident. With two, at 20,000 agents (BENCHMARKS.md,
    session 9): a full restore peaked at 200-202 MB instead of 251-256, an incremental backup at
    238-255 instead of 281-289, a full backup at 211-212 instead of 219-220, at the same CPU. (A
    fixed 4 MiB mmap threshold took ~10 MB more off, for 7 % more CPU in a full backup: not set.)
    Called before the process's threads start; an arena limit the environment sets
    (``MALLOC_ARENA_MAX``, ``GLIBC_TUNABLES``) is left as it is."""
    if "MALLOC_ARENA_MAX" in os.environ or "GLIBC_TUNABLES" in os.environ:
        return False
    mallopt = _mallopt()
    return mallopt is not None and mallopt(M_ARENA_MAX, ARENA_MAX) == 1


def release_free_memory() -> None:
    """Return the heap's free pages to the system, if the C library can (glibc); else do nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _mallopt() -> Any:
    import ctypes

    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl, macOS, Windows: nothing to do
        return None


@functools.cache
def _malloc_trim() -> Any:
    import ctypes  # here, not at import: most commands never store a pack

    try:
        return ctypes.CDLL(None).malloc_trim  # the C library this interpreter runs on
    except (OSError, AttributeError):  # musl, macOS, Windows: nothing to do
        return None


def fewer_collections() -> tuple[int, int, int]:
    """Run the cycle collector far less often (a young pass every ``GC_GEN0_THRESHOLD`` new
    containers, or as it was if that is rarer); returns the thresholds as they were. The CLI sets
    it for its whole process: at the default an incremental backup ran ~180 passes, 33 ms of them
    during the start-up imports (one full pass of 13 ms), which make tens of thousands of lasting
    objects (modules, classes, functions) and hardly any garbage: 35-49 ms of the ~1 s of CPU such
    a backup takes, every millisecond of it holding the GIL. Cycles are still collected, in fewer
    passes. A backup's copies set it too (``ops.backup.fewer_gc_passes``), for embedders."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_GEN0_THRESHOLD), *before[1:])
    return before
