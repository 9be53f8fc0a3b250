"""Fixtures for the repository layer: fast KDF, small blobs and packs, local and S3 (moto) backends."""

from __future__ import annotations

import sys
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 endpoint served by moto in a thread, on a free port, for the whole session."""
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
