"""Fixtures for the release-matrix tests: a copy of any release's cached deployment in a second."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: let tests import releases_testing
sys.path.insert(0, str(Path(__file__).parent.parent / "ops"))  # reuse ops_testing (repos, CLI runs)
sys.path.insert(0, str(Path(__file__).parent.parent))  # and the helpers shared by every test folder

from ops_testing import new_repo
from releases_testing import OLDER_RELEASES

from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import LettaDatabase, load_deployment
from lifeboat.sandbox.letta_env import LETTA_VERSION
from lifeboat.sandbox.postgres import Cluster, default_flavor
from lifeboat.sandbox.release_deployment import ensure_release, load_release

_serial = itertools.count()


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return new_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def release_matrix() -> None:
    """Build every missing release deployment at once, in parallel (a fresh CI machine: one
    ~2 min wave instead of three in a row); each entry is file-locked, so this is safe anywhere."""
    with ThreadPoolExecutor(len(OLDER_RELEASES)) as pool:
        list(pool.map(lambda version: ensure_release(version, default_flavor()), OLDER_RELEASES))


@pytest.fixture
def release_db_factory(release_matrix: None) -> Iterator[Callable[[str, Cluster], LettaDatabase]]:
    """``load(version, cluster)`` → a fresh database holding that release's cached deployment
    (built on first use); every database is dropped at teardown."""
    loaded: list[LettaDatabase] = []

    def load(version: str, cluster: Cluster) -> LettaDatabase:
        name = f"rel_{version.replace('.', '_')}_{os.getpid()}_{next(_serial)}"
        if version == LETTA_VERSION:
            database = load_deployment(cluster, name)
        else:
            database = load_release(cluster, name, version)
        loaded.append(database)
        return database

    yield load
    for database in loaded:
        database.drop()
