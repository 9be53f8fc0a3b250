"""Fixtures for operations tests; see ops_testing.py for helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: let tests import ops_testing

from ops_testing import new_repo

from lifeboat.repo.repository import Repository


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return new_repo(tmp_path / "repo")
