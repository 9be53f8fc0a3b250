"""Shared fixtures: real PostgreSQL clusters (two majors), Redis, and the real Letta deployment."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lifeboat.sandbox.deployment import LettaDatabase, ensure_deployment, load_deployment
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster, default_flavor, start_cluster
from lifeboat.sandbox.redis_server import RedisServer


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


# -- the real Letta 0.16.8 deployment ---------------------------------------------------------------
_db_serial = itertools.count()


@pytest.fixture(scope="session")
def letta_deployment() -> dict[str, Any]:
    """Facts of the cached populated deployment (default flavor); builds it on first use (~2-3 min)."""
    return ensure_deployment(default_flavor()).facts


@pytest.fixture
def letta_db_factory() -> Iterator[Callable[[Cluster], LettaDatabase]]:
    """``load(cluster)`` → a fresh database on ``cluster`` loaded from the cached deployment of its
    flavor (built lazily, e.g. pg16 on first use); every database is dropped at teardown."""
    loaded: list[LettaDatabase] = []

    def load(cluster: Cluster) -> LettaDatabase:
        name = f"letta_t{os.getpid()}_{next(_db_serial)}"
        database = load_deployment(cluster, name)
        loaded.append(database)
        return database

    yield load
    for database in loaded:
        database.drop()


@pytest.fixture
def letta_db(pg_cluster: Cluster, letta_db_factory: Callable[[Cluster], LettaDatabase]) -> LettaDatabase:
    """A fresh database on the session cluster holding the cached deployment: ``.dsn`` (role
    letta), ``.admin_dsn`` (superuser), ``.dbname``, ``.cluster``, ``.facts``."""
    return letta_db_factory(pg_cluster)


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    """One fake OpenAI-compatible endpoint for every Letta server of the session."""
    with FakeLLM() as llm:
        yield llm


@pytest.fixture
def letta_server(fake_llm: FakeLLM) -> Iterator[Callable[..., LettaServer]]:
    """``start(dsn, redis_port=None, **kwargs)`` → a running real Letta server (~15-25 s to boot)
    on that database, using the session's fake LLM; all are stopped at teardown."""
    started: list[LettaServer] = []

    def start(dsn: str, redis_port: int | None = None, **kwargs: Any) -> LettaServer:
        server = LettaServer(dsn, llm=fake_llm, redis_port=redis_port, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free port (no persistence): ``.port``, ``.url``, ``.client()``."""
    with RedisServer() as redis:
        yield redis


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A local S3 endpoint (moto's server mode in a thread, on a free port) for the session."""
    import os

    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
