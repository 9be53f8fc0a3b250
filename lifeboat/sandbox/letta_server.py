"""The real Letta 0.16.8 server (``letta server``) as a child process, for demos, drills and tests.

It runs from the cached Letta venv (:mod:`lifeboat.sandbox.letta_env`) against a given DSN, with
its own HOME and tool-execution dir in a temp directory, no inherited provider keys, and an
OpenAI-compatible :class:`~lifeboat.sandbox.fake_llm.FakeLLM` as its only model provider. Healthy
at ``GET /v1/health/`` after ~15 s (it creates the default org/user, syncs providers and upserts
base tools at every boot).

    with FakeLLM() as llm, LettaServer(dsn, llm=llm) as server:
        agents = server.get("/v1/agents/")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from lifeboat.errors import SandboxError
from lifeboat.sandbox.fake_llm import CHAT_MODEL, FAKE_LLM_BASE_URL, FakeLLM
from lifeboat.sandbox.letta_env import LettaEnv, ensure_letta_env
from lifeboat.sandbox.letta_schema import letta_process_env
from lifeboat.sandbox.postgres import free_port

#: Handles the server registers for the fake provider (OPENAI_BASE_URL is not OpenAI's).
LLM_HANDLE = f"openai-proxy/{CHAT_MODEL}"
EMBEDDING_HANDLE = "openai/text-embedding-3-small"
START_TIMEOUT = 180.0


class LettaServer:
    """One ``letta server`` process. Use as a context manager, or ``start()`` / ``stop()``.

    ``llm``: a running FakeLLM (one is started and owned by the server when omitted).
    ``redis_port``: set LETTA_REDIS_HOST/PORT (no Redis otherwise: Letta then uses a no-op client).
    ``extra_env``: more environment variables (e.g. LETTA_ENCRYPTION_KEY).
    """

    def __init__(
        self,
        dsn: str,
        *,
        llm: FakeLLM | None = None,
        redis_port: int | None = None,
        port: int | None = None,
        env: LettaEnv | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.dsn = dsn
        self.llm = llm
        self._owns_llm = llm is None
        self.redis_port = redis_port
        self.port = port or free_port()
        self.letta_env = env
        self.extra_env = dict(extra_env or {})
        self.home = Path(tempfile.mkdtemp(prefix="lifeboat-letta-home-"))
        self.log_path = self.home / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def environment(self) -> dict[str, str]:
        """The child's environment (scrubbed of the caller's provider keys)."""
        assert self.llm is not None
        tool_dir = self.home / "tool_execution_dir"
        tool_dir.mkdir(exist_ok=True)
        env = letta_process_env(str(self.home), self.dsn)
        env.update(
            {
                "OPENAI_API_KEY": "fake",
                # Agents store this URL in their llm/embedding configs; the proxy makes it reach
                # whichever FakeLLM is running now (see fake_llm.FAKE_LLM_BASE_URL).
                "OPENAI_BASE_URL": FAKE_LLM_BASE_URL,
                "HTTP_PROXY": self.llm.proxy_url,
                "http_proxy": self.llm.proxy_url,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "TOOL_EXEC_DIR": str(tool_dir),
                "LETTA_TOOL_EXEC_DIR": str(tool_dir),
            }
        )
        if self.redis_port is not None:
            env.update({"LETTA_REDIS_HOST": "127.0.0.1", "LETTA_REDIS_PORT": str(self.redis_port)})
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> LettaServer:
        """Boot (again, after stop/kill) and wait for health; retries once if the port was taken."""
        if self.running():
            return self
        if self.llm is None:
            self.llm = FakeLLM().start()
        letta_env = self.letta_env or ensure_letta_env()
        for attempt in range(2):
            self._spawn(letta_env)
            try:
                self._wait_healthy(timeout)
                return self
            except SandboxError:
                if attempt or "address already in use" not in self.log_tail(40).lower():
                    raise
                self.port = free_port()
        return self

    def _spawn(self, letta_env: LettaEnv) -> None:
        args = letta_env.letta_command("server", "--host", "127.0.0.1", "--port", str(self.port))
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                args,
                cwd=self.home,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches tool subprocesses too
            )

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise SandboxError(f"letta server exited at start: {self.log_tail(1)}")
            try:
                if httpx.get(f"{self.base_url}/v1/health/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.kill()
        raise SandboxError(f"letta server not healthy after {timeout:.0f} s (log: {self.log_path})")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self._signal(signal.SIGTERM)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def kill(self) -> None:
        """SIGKILL the server's process group at once (a crash, as far as the database can tell)."""
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=30)
        self._close()

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def cleanup(self) -> None:
        """Stop everything this object started and remove its temp HOME."""
        self.stop()
        if self._owns_llm and self.llm is not None:
            self.llm.stop()
            self.llm = None
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> LettaServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    # -- REST helpers ---------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=120)
        return self._client

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One JSON request; raises SandboxError on a non-2xx answer; returns the decoded body."""
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise SandboxError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        if not response.content:
            return None
        try:
            return response.json()
        except json.JSONDecodeError:
            return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (
            self.request("POST", path, json=body, **kwargs)
            if body is not None
            else self.request("POST", path, **kwargs)
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(self, path: str, body: Any) -> list[dict[str, Any]]:
        """POST to a streaming endpoint and collect its SSE ``data:`` events (JSON-decoded)."""
        return list(self.iter_stream(path, body))

    def iter_stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        with self.client.stream("POST", path, json=body, timeout=300) as response:
            if response.status_code >= 400:
                response.read()
                raise SandboxError(f"POST {path} -> {response.status_code}: {response.text[:300]}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data and data != "[DONE]":
                    with contextlib.suppress(json.JSONDecodeError):
                        yield json.loads(data)
