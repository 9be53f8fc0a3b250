"""Where lifeboat finds the database, Redis and the repository: the same variables Letta reads.

Precedence: explicit flag > ``LIFEBOAT_*`` / ``LETTA_*`` environment > config file > default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from lifeboat.errors import UsageError

DEFAULT_CONFIG = Path(os.environ.get("LIFEBOAT_CONFIG", "~/.config/lifeboat/config.toml")).expanduser()


def letta_pg_uri(env: dict[str, str] | None = None) -> str:
    """The PostgreSQL URI the Letta server would use (LETTA_PG_URI, else the five LETTA_PG_* variables)."""
    env = dict(os.environ) if env is None else env
    lower = {key.lower(): value for key, value in env.items()}
    uri = lower.get("letta_pg_uri")
    if uri:
        return normalize_dsn(uri)
    parts = {name: lower.get(f"letta_pg_{name}") for name in ("db", "user", "password", "host", "port")}
    if all(parts.values()):
        return (
            f"postgresql://{quote(parts['user'] or '', safe='')}:{quote(parts['password'] or '', safe='')}"
            f"@{parts['host']}:{parts['port']}/{parts['db']}"
        )
    return "postgresql://letta:letta@localhost:5432/letta"


def normalize_dsn(uri: str) -> str:
    """Accept SQLAlchemy-style URIs (postgresql+asyncpg://, postgresql+pg8000://) as Letta's users write them."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+pg8000://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if uri.startswith(prefix):
            return "postgresql://" + uri[len(prefix) :]
    if uri.startswith("postgres://"):
        return "postgresql://" + uri[len("postgres://") :]
    return uri


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int


def letta_redis(env: dict[str, str] | None = None) -> RedisTarget | None:
    """Letta's Redis (LETTA_REDIS_HOST / LETTA_REDIS_PORT), or None when not configured."""
    env = dict(os.environ) if env is None else env
    lower = {key.lower(): value for key, value in env.items()}
    host = lower.get("letta_redis_host")
    if not host:
        return None
    try:
        port = int(lower.get("letta_redis_port") or 6379)
    except ValueError as exc:
        raise UsageError(f"LETTA_REDIS_PORT is not a number: {lower.get('letta_redis_port')!r}") from exc
    return RedisTarget(host, port)


def load_config(path: Path | None = None) -> dict[str, object]:
    """The optional TOML config file (keys: repository, password_file, ...)."""
    path = path or DEFAULT_CONFIG
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc


def repository_url(flag: str | None, config: dict[str, object] | None = None) -> str:
    """The repository: ``--repo``, else LIFEBOAT_REPOSITORY, else the config file's ``repository``."""
    url = flag or os.environ.get("LIFEBOAT_REPOSITORY")
    if not url:
        configured = (config if config is not None else load_config()).get("repository")
        url = str(configured) if configured else None
    if not url:
        raise UsageError(
            "no repository given: use --repo, LIFEBOAT_REPOSITORY or 'repository' in the config file"
        )
    return url


def passphrase(
    password_file: Path | None = None,
    *,
    config: dict[str, object] | None = None,
    prompt: bool = True,
    confirm: bool = False,
) -> str | None:
    """The repository passphrase: --password-file, LIFEBOAT_PASSWORD, LIFEBOAT_PASSWORD_FILE,
    the config file's ``password_file``, else an interactive prompt (never when stdin is not a tty).

    Returns None only when no source exists and prompting is impossible; callers that need a key
    then fail closed.
    """
    import sys

    file = password_file or _env_path("LIFEBOAT_PASSWORD_FILE")
    if file is None:
        configured = (config if config is not None else load_config()).get("password_file")
        file = Path(str(configured)).expanduser() if configured else None
    if file is not None:
        try:
            return file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read password file {file}: {exc.strerror}") from exc
    if "LIFEBOAT_PASSWORD" in os.environ:
        return os.environ["LIFEBOAT_PASSWORD"]
    if prompt and sys.stdin.isatty():
        import getpass

        first = getpass.getpass("repository passphrase: ")
        if confirm and getpass.getpass("again: ") != first:
            raise UsageError("the passphrases do not match")
        return first
    return None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None
