"""Fixtures for the Letta Code migration tests; helpers live in lc_samples.py / lc_testing.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: let tests import the helpers
sys.path.insert(0, str(Path(__file__).parent.parent / "ops"))  # and reuse ops_testing
sys.path.insert(0, str(Path(__file__).parent.parent))  # and the helpers shared by every test folder
