"""Constants and helpers of the release-matrix tests."""

from __future__ import annotations

from lifeboat.sandbox.letta_env import LETTA_VERSION
from lifeboat.sandbox.release_deployment import MATRIX

#: Every release the sandbox deploys: the older matrix plus 0.16.8 (the large deployment).
ALL_RELEASES = (*MATRIX, LETTA_VERSION)
OLDER_RELEASES = tuple(MATRIX)
