"""Shared fixtures: real PostgreSQL clusters (two majors), Redis, and the real Letta deployment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifeboat.sandbox.postgres import Cluster, default_flavor, start_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway cluster of the default flavor (LIFEBOAT_PG_FLAVOR, pg18 unless set) per session."""
    cluster = start_cluster(default_flavor())
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg16_cluster() -> Iterator[Cluster]:
    cluster = start_cluster("pg16")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg18_cluster() -> Iterator[Cluster]:
    cluster = start_cluster("pg18")
    yield cluster
    cluster.stop()
