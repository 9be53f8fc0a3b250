"""Letta's alembic revisions and the releases whose head they are (docs/LETTA.md §9).

Use ``alembic_version`` rather than the server's health version to identify a schema.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_0_16_8 = "1c28e167b74f"


@dataclass(frozen=True)
class Release:
    version: str
    head: str
    revision_count: int


RELEASES: tuple[Release, ...] = (
    Release("0.6.0", "5987401b40ae", 9),
    Release("0.7.0", "a3c7d62e08ca", 61),
    Release("0.8.0", "614c4e53b66e", 77),
    Release("0.9.0", "ddecfe4902bc", 98),
    Release("0.10.0", "15b577c62f3f", 104),
    Release("0.11.0", "05c3bc564286", 107),
    Release("0.11.7", "ddb69be34a72", 117),
    Release("0.12.0", "c734cfc0d595", 135),
    Release("0.13.0", "f6cd5a1e519d", 141),
    Release("0.14.0", "b1c2d3e4f5a6", 146),
    Release("0.16.0", "d0880aae6cee", 150),
    Release("0.16.1", "39577145c45d", 151),
    Release("0.16.2", "27de0f58e076", 153),
    Release("0.16.4", "a1b2c3d4e5f8", 161),
    Release("0.16.5", "b2c3d4e5f6a8", 163),
    Release("0.16.7", HEAD_0_16_8, 167),
)

# Releases that share a head with the one listed above them.
_ALIASES = {
    "0.10.1": "0.10.0",
    "0.12.1": "0.12.0",
    "0.15.0": "0.14.0",
    "0.15.1": "0.14.0",
    "0.16.6": "0.16.5",
    "0.16.8": "0.16.7",
}


def releases_for(revision: str | None) -> list[str]:
    """Every Letta release whose alembic head is ``revision`` (empty when unknown)."""
    if not revision:
        return []
    names = [release.version for release in RELEASES if release.head == revision]
    names += [alias for alias, base in _ALIASES.items() if base in names]
    return sorted(names, key=lambda v: tuple(int(p) for p in v.split(".")))


def release_label(revision: str | None) -> str:
    """A short human label, e.g. ``0.16.7–0.16.8`` or ``unknown``."""
    names = releases_for(revision)
    if not names:
        return "unknown"
    return names[0] if len(names) == 1 else f"{names[0]}–{names[-1]}"


def is_known(revision: str | None) -> bool:
    return bool(releases_for(revision))
