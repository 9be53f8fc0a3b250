"""Fixtures for the repository layer: fast KDF, small blobs and packs, local and S3 (moto) backends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(
    0, str(Path(__file__).parent)
)  # pytest's importlib mode does not, and tests import repo_testing

from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK

from lifeboat.repo import Repository


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path: Path) -> Repository:
    return Repository.init(repo_path, PASSPHRASE, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK, kdf=FAST_KDF)


@pytest.fixture
def plain_repo(repo_path: Path) -> Repository:
    return Repository.init(repo_path, None, encrypt=False, chunker=SMALL_CHUNKS, pack_size=SMALL_PACK)
