"""Giving the C heap's free memory back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

A backup allocates and frees buffers of up to a few MB at a high rate on several threads (COPY
batches, blob plaintexts, compressed and sealed bodies) while others stay alive, and glibc keeps the
pages of the holes this leaves. At 20,000 agents that was 30-40 MB of the backup's peak RSS, most
of it at the end, when the manifest is written into fresh memory. The writer gives the free pages
back after each pack it stores (every few seconds, ~1 ms each).
"""

from __future__ import annotations

import functools
from typing import Any


def release_free_memory() -> None:
    """Return the heap's free pages to the system, if the C library can (glibc); else do nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes  # here, not at import: most commands never store a pack

    try:
        return ctypes.CDLL(None).malloc_trim  # the C library this interpreter runs on
    except (OSError, AttributeError):  # musl, macOS, Windows: nothing to do
        return None
