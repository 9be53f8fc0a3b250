"""Keeping the C heap small: fewer glibc arenas and a fixed mmap threshold for the process
(:func:`use_compact_heap`), and free memory given back (``malloc_trim``); no-ops elsewhere.

A backup allocates and frees buffers of up to a few MB at a high rate on several threads (COPY
batches, blob plaintexts, compressed and sealed bodies) while others stay alive, and glibc keeps the
pages of the holes this leaves. At 20,000 agents that was 30-40 MB of the backup's peak RSS, most
of it at the end, when the manifest is written into fresh memory. The writer gives the free pages
back after each pack it stores (every few seconds, ~1 ms each).
"""

from __future__ import annotations

import functools
import os
from typing import Any

# mallopt(3) parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD = 4 * 1024 * 1024


def use_compact_heap() -> list[str]:
    """Set glibc's allocator for this process before its threads start; returns what was set.

    By default glibc gives each thread that allocates its own arena (up to 8 per core), and it
    raises the size from which an allocation gets its own mapping to the largest mapped block freed
    so far (up to 32 MiB): after the first 32 MiB pack is freed, every blob, batch and body comes
    from the arenas, whose holes stay resident. An incremental backup at 20,000 agents peaked at
    281-289 MB that way; with two arenas and the threshold fixed at 4 MiB, 233-234 MB, at the same
    CPU (BENCHMARKS.md, session 9). A parameter the environment already sets
    (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``, ``GLIBC_TUNABLES``) is left as it is."""
    if "GLIBC_TUNABLES" in os.environ:
        return []
    mallopt = _mallopt()
    if mallopt is None:
        return []
    wanted = {
        "MALLOC_ARENA_MAX": (M_ARENA_MAX, ARENA_MAX),
        "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    }
    return [
        name
        for name, (param, value) in wanted.items()
        if name not in os.environ and mallopt(param, value) == 1
    ]


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
