"""Fixtures for the agent-file tests: one real Letta server shared by the round-trip tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lifeboat.sandbox.deployment import LettaDatabase, load_deployment
from lifeboat.sandbox.fake_llm import FakeLLM
from lifeboat.sandbox.letta_server import LettaServer
from lifeboat.sandbox.postgres import Cluster

_serial = itertools.count()


@dataclass
class SharedServer:
    db: LettaDatabase
    server: LettaServer


@pytest.fixture(scope="module")
def shared_server(pg_cluster: Cluster, fake_llm: FakeLLM) -> Iterator[SharedServer]:
    """One database loaded from the cached deployment and ONE real server on it, per module.

    Booting Letta costs ~15 s; every round-trip test of a module uses this pair and creates
    only new agents, so the tests stay independent.
    """
    db = load_deployment(pg_cluster, f"af_shared_{os.getpid()}_{next(_serial)}")
    server = LettaServer(db.dsn, llm=fake_llm)
    try:
        server.start()
        yield SharedServer(db, server)
    finally:
        server.cleanup()
        db.drop()
