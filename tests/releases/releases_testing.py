"""Constants and helpers of the release-matrix tests."""

from __future__ import annotations

from typing import Any

from lifeboat.sandbox.letta_env import LETTA_VERSION
from lifeboat.sandbox.release_deployment import MATRIX

#: Every release the sandbox deploys: the older matrix plus 0.16.8 (the large deployment).
ALL_RELEASES = (*MATRIX, LETTA_VERSION)
OLDER_RELEASES = tuple(MATRIX)


def comparable_view(view: dict[str, Any]) -> dict[str, Any]:
    """An api_view without what differs legitimately between releases (none, so far)."""
    return view
