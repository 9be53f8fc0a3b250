"""Fixtures for the operator tools (drill, doctor, forget/prune, copy, unlock, metrics)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: let tests import operator_testing

from operator_testing import small_repo

from lifeboat.repo.repository import Repository


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """An encrypted repository with small blobs and packs (many packs from little data)."""
    return small_repo(tmp_path / "repo")
