"""Fixtures for the agent-restore tests; helpers live in agents_testing.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: let tests import agents_testing
sys.path.insert(0, str(Path(__file__).parent.parent / "ops"))  # and reuse ops_testing
sys.path.insert(0, str(Path(__file__).parent.parent))  # and the helpers shared by every test folder

from ops_testing import new_repo

from lifeboat.repo.repository import Repository


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return new_repo(tmp_path / "repo")
