"""Redis runner and the build cache (atomic entries, one builder at a time)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lifeboat.errors import SandboxError
from lifeboat.sandbox.letta_cache import ensure_entry
from lifeboat.sandbox.redis_server import RedisServer


def test_redis_server_fixture(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("agent:send_message:run_id:agent-x", "run-y")
    assert client.get("agent:send_message:run_id:agent-x") == b"run-y"
    assert client.config_get("save")["save"] == ""
    assert client.config_get("appendonly")["appendonly"] == "no"


def test_redis_server_stops_and_cleans_up() -> None:
    with RedisServer() as redis:
        directory = redis.dir
        assert redis.client().ping()
    assert not directory.exists()


def test_failed_build_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))

    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("partial")
        raise SandboxError("boom")

    with pytest.raises(SandboxError):
        ensure_entry("thing", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".thing.lock"]


def test_concurrent_callers_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    builds: list[int] = []

    def build(tmp: Path) -> None:
        builds.append(1)
        time.sleep(0.3)
        (tmp / "done").write_text("ok")

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_entry("shared", build))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert {p for p in results} == {tmp_path / "shared"}
    assert (tmp_path / "shared" / "done").read_text() == "ok"
