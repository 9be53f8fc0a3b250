"""An isolated, cached virtualenv holding the real Letta server, built like production.

A plain ``pip install letta`` is not what Letta's images run: it lacks the postgres/redis
extras and resolves much newer dependencies. Production pins everything in the release's
``uv.lock``, which only the **sdist** carries (with ``alembic/``, ``alembic.ini``,
``init.sql`` and ``compose.yaml``). So we download the sdist, export the lock's pins for the
``postgres``, ``redis`` and ``server`` extras (plus what a release needs to import, see
``RELEASE_EXTRAS``), append ``letta==<version>`` and
``uv pip sync --reinstall`` them into a dedicated venv. The result is cached under
``<cache>/letta-env-<version>-b<builder>/`` and built on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import SandboxError
from lifeboat.sandbox.letta_cache import ensure_entry

LETTA_VERSION = "0.16.8"
#: Bump when the way the environment is built changes, so old cache entries are not reused.
ENV_BUILDER_VERSION = 1
#: Files of the sdist we keep next to the venv (the sdist's own ``letta/`` is left out on
#: purpose: ``alembic.ini`` prepends ``.`` to sys.path, which would shadow the installed wheel).
SDIST_MEMBERS = ("alembic", "alembic.ini", "init.sql", "compose.yaml", "uv.lock", "pyproject.toml")
LETTA_EXTRAS = ("postgres", "redis", "server")
#: Extras a release needs beyond LETTA_EXTRAS: 0.11.x imports ``sqlite_vec`` at module load.
RELEASE_EXTRAS = {"0.11.7": ("sqlite",)}
_TIMEOUT = 1800


@dataclass(frozen=True)
class LettaEnv:
    """A finished Letta environment: ``venv/`` plus the sdist's migration files in ``src/``."""

    root: Path
    version: str = LETTA_VERSION

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def src(self) -> Path:
        """Directory holding ``alembic/``, ``alembic.ini``, ``init.sql``, ``compose.yaml``, ``uv.lock``."""
        return self.root / "src"

    def letta_command(self, *args: str) -> list[str]:
        """argv running the ``letta`` CLI (through the venv's python: immune to shebang paths)."""
        code = "import sys; from letta.main import app; sys.argv[0] = 'letta'; sys.exit(app())"
        return [str(self.python), "-c", code, *args]

    def alembic_command(self, *args: str) -> list[str]:
        return [str(self.python), "-m", "alembic", *args]


def uv_bin() -> str:
    """The ``uv`` executable shipped by the ``uv`` wheel (a lifeboat dependency)."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise SandboxError("uv not found: install lifeboat's dependencies (the uv wheel)") from None
        return found


def env_entry_name(version: str = LETTA_VERSION) -> str:
    return f"letta-env-{version}-b{ENV_BUILDER_VERSION}"


def ensure_letta_env(version: str = LETTA_VERSION) -> LettaEnv:
    """The cached Letta environment for ``version``, building it (minutes, once) if missing."""
    root = ensure_entry(env_entry_name(version), lambda tmp: _build(tmp, version))
    return LettaEnv(root, version)


def _run(args: list[str], what: str, cwd: Path | None = None) -> str:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("UV_PROJECT", "VIRTUAL_ENV", "UV_PYTHON"))
    }
    try:
        done = subprocess.run(
            args, cwd=cwd, env=env, check=True, capture_output=True, text=True, timeout=_TIMEOUT
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise SandboxError(f"{what} failed: {tail[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{what} timed out after {_TIMEOUT} s") from exc
    return done.stdout


def _build(tmp: Path, version: str) -> None:
    src = tmp / "src"
    _fetch_sdist(tmp / "download", src, version)
    requirements = _export_requirements(src, version)
    (tmp / "requirements.txt").write_text(requirements)
    uv = uv_bin()
    # --relocatable: the venv is built in a temp dir and renamed into the cache.
    _run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(tmp / "venv")], "uv venv")
    python = tmp / "venv" / "bin" / "python"
    _run(
        [uv, "pip", "sync", "--quiet", "--reinstall", "--python", str(python), str(tmp / "requirements.txt")],
        f"installing letta=={version}",
    )
    _run(
        [str(python), "-c", "import letta.main, asyncpg, pg8000, pgvector, redis, alembic"],
        "import check of the Letta venv",
    )


def _fetch_sdist(download: Path, dest: Path, version: str) -> None:
    """Download letta's sdist with pip (run through uv) and extract the members we need."""
    _run(
        [
            uv_bin(), "tool", "run", "--quiet", "--from", "pip", "pip", "download", "--quiet",
            "--disable-pip-version-check", "--no-deps", "--no-binary", ":all:",
            f"letta=={version}", "-d", str(download),
        ],
        f"downloading the letta=={version} sdist",
    )  # fmt: skip
    archives = list(download.glob("letta-*.tar.gz"))
    if len(archives) != 1:
        raise SandboxError(f"expected one letta sdist in {download}, found {len(archives)}")
    top = f"letta-{version}/"
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if _wanted(m.name, top)]
        for member in members:
            member.name = member.name[len(top) :]
        tar.extractall(dest, members=members, filter="data")
    missing = [name for name in SDIST_MEMBERS if not (dest / name).exists()]
    if missing:
        raise SandboxError(f"letta sdist lacks {', '.join(missing)}")
    shutil.rmtree(download)


def _wanted(name: str, top: str) -> bool:
    if not name.startswith(top):
        return False
    rest = name[len(top) :]
    return any(rest == m or rest.startswith(m + "/") for m in SDIST_MEMBERS)


def _export_requirements(src: Path, version: str) -> str:
    """The lock's pins for the production extras, plus the letta wheel itself."""
    wanted = (*LETTA_EXTRAS, *RELEASE_EXTRAS.get(version, ()))
    extras = [arg for extra in wanted for arg in ("--extra", extra)]
    exported = _run(
        [
            uv_bin(), "export", "--quiet", "--project", str(src), "--frozen", "--no-dev", *extras,
            "--no-emit-project", "--no-hashes", "--format", "requirements-txt",
        ],
        "uv export of letta's uv.lock",
    )  # fmt: skip
    if "sqlalchemy==" not in exported:
        raise SandboxError("uv export of letta's uv.lock produced no pins")
    return exported.rstrip("\n") + f"\nletta=={version}\n"
