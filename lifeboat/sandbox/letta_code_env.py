"""An isolated, cached virtualenv holding the real Letta Code (the V1 server's successor).

PyPI's ``letta`` from 0.32 on *is* Letta Code: the wheel carries the bundled CLI
(``letta.js``) and its own Node runtime, so nothing else is needed. It installs a ``letta``
command that is not the V1 server, so it lives in its own venv, never next to
:mod:`lifeboat.sandbox.letta_env`'s. The venv is cached under
``<cache>/letta-code-<version>-b<builder>/`` and built on first use (seconds with a warm uv
cache).

:meth:`LettaCodeEnv.run` runs it offline against a local-backend directory: ``HOME`` and
``LETTA_LOCAL_BACKEND_DIR`` point at scratch directories, so it needs no account and no
network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import SandboxError
from lifeboat.letta_code import LETTA_CODE_VERSION
from lifeboat.sandbox.letta_cache import ensure_entry
from lifeboat.sandbox.letta_env import uv_bin

#: Bump when the way the environment is built changes, so old cache entries are not reused.
ENV_BUILDER_VERSION = 1
_TIMEOUT = 900
_LAUNCH = "import sys; from letta_code import main; sys.argv[0] = 'letta'; sys.exit(main())"
#: Variables of the caller that would make Letta Code talk to a cloud or another backend.
_DROPPED_ENV = (
    "LETTA_API_KEY",
    "LETTA_BASE_URL",
    "LETTA_LOCAL_BACKEND_DIR",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@dataclass(frozen=True)
class LettaCodeEnv:
    """A finished Letta Code environment (``venv/``)."""

    root: Path
    version: str = LETTA_CODE_VERSION

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    def command(self, *args: str) -> list[str]:
        """argv running ``letta`` (through the venv's python: immune to shebang paths)."""
        return [str(self.python), "-c", _LAUNCH, *args]

    def environment(self, home: Path, backend_dir: Path) -> dict[str, str]:
        """An offline environment: scratch ``HOME``, the local backend in ``backend_dir``."""
        env = {
            k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and not k.startswith("VIRTUAL_ENV")
        }
        env.update(
            HOME=str(home),
            LETTA_LOCAL_BACKEND_DIR=str(backend_dir),
            NO_COLOR="1",
            CI="1",
        )
        return env

    def run(
        self,
        *args: str,
        home: Path,
        backend_dir: Path,
        timeout: float = 300,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``letta --backend local <args>`` and return the finished process (never raises on exit code).

        stdout goes through a file, not a pipe: Node writes to pipes asynchronously, and Letta Code
        exits before a long JSON answer (over 64 KiB) has left the pipe buffer.
        """
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(
                self.command("--backend", "local", *args),
                env=self.environment(home, backend_dir),
                cwd=cwd or home,
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
            out.seek(0)
            done.stdout = out.read().decode("utf-8", errors="replace")
        return done

    def version_line(self) -> str:
        """What ``letta --version`` prints, e.g. ``0.34.12 (Letta Code)``."""
        done = subprocess.run(
            self.command("--version"), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise SandboxError(f"letta --version failed: {done.stderr.strip()[-200:]}")
        return done.stdout.strip()


def env_entry_name(version: str = LETTA_CODE_VERSION) -> str:
    return f"letta-code-{version}-b{ENV_BUILDER_VERSION}"


def ensure_letta_code_env(version: str = LETTA_CODE_VERSION) -> LettaCodeEnv:
    """The cached Letta Code environment for ``version``, building it (once) if missing."""
    root = ensure_entry(env_entry_name(version), lambda tmp: _build(tmp, version))
    return LettaCodeEnv(root, version)


def _run(args: list[str], what: str) -> str:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("UV_PROJECT", "VIRTUAL_ENV", "UV_PYTHON"))
    }
    try:
        done = subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=_TIMEOUT)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise SandboxError(f"{what} failed: {tail[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{what} timed out after {_TIMEOUT} s") from exc
    return done.stdout


def _build(tmp: Path, version: str) -> None:
    uv = uv_bin()
    venv = tmp / "venv"
    # --relocatable: the venv is built in a temp dir and renamed into the cache.
    _run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(venv)], "uv venv")
    python = venv / "bin" / "python"
    # The wheel has no dependencies: pinning it pins everything (its Node runtime included).
    _run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps", f"letta=={version}"],
        f"installing letta=={version} (Letta Code)",
    )
    built = LettaCodeEnv(tmp, version).version_line()
    if not built.startswith(version) or "Letta Code" not in built:
        raise SandboxError(f"letta=={version} is not the expected Letta Code: --version says {built!r}")
