"""The demo: the main job on an embedded default (filled in as capabilities land)."""

from __future__ import annotations


def run_demo() -> None:
    raise NotImplementedError
