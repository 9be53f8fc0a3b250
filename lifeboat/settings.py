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


# Each connection field: Letta's variable, libpq's variable, Letta's default.
_PG_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("host", "LETTA_PG_HOST", "PGHOST", "localhost"),
    ("port", "LETTA_PG_PORT", "PGPORT", "5432"),
    ("user", "LETTA_PG_USER", "PGUSER", "letta"),
    ("dbname", "LETTA_PG_DB", "PGDATABASE", "letta"),
)
_LIBPQ_PASSWORD_VARIABLES = ("PGPASSWORD", "PGPASSFILE")


@dataclass(frozen=True)
class DatabaseSetting:
    """The DSN lifeboat will use and where it came from (for error messages and ``doctor``)."""

    dsn: str
    source: str


def database_setting(
    flag: str | None = None,
    env: dict[str, str] | None = None,
    config: dict[str, object] | None = None,
) -> DatabaseSetting:
    """The Letta database, as flag > LETTA_PG_URI > LETTA_PG_* / PG* (per field) > config ``db`` > default.

    Letta's own variables come first; libpq's ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGDATABASE`` fill
    the fields Letta's leave unset, and ``PGPASSWORD``/``PGPASSFILE`` are left for libpq itself to
    read (so no password is copied into a DSN). ``LETTA_PG_DB`` alone is enough: the other fields take
    Letta's defaults (``letta:letta@localhost:5432``).
    """
    if flag:
        return DatabaseSetting(normalize_dsn(flag), "--db")
    env = dict(os.environ) if env is None else env
    # Letta's settings are case-insensitive (pydantic); libpq's variables are not.
    upper = {key.upper(): value for key, value in env.items() if value and key.upper().startswith("LETTA_")}
    upper |= {key: value for key, value in env.items() if value and key.startswith("PG")}
    if upper.get("LETTA_PG_URI"):
        return DatabaseSetting(normalize_dsn(upper["LETTA_PG_URI"]), "LETTA_PG_URI")
    fields, used = _fields_from_environment(upper)
    if not used:
        configured = (config if config is not None else load_config()).get("db")
        if configured:
            return DatabaseSetting(
                normalize_dsn(str(configured)), f"config file ({DEFAULT_CONFIG}, key 'db')"
            )
    password = upper.get("LETTA_PG_PASSWORD")
    if password:
        used.append("LETTA_PG_PASSWORD")
    elif not any(upper.get(name) for name in _LIBPQ_PASSWORD_VARIABLES):
        password = "letta"
    return DatabaseSetting(
        _uri(fields, password), ", ".join(used) + " (other fields: Letta's defaults)" if used else "default"
    )


def _fields_from_environment(upper: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    fields: dict[str, str] = {}
    used: list[str] = []
    for field, letta_name, libpq_name, default in _PG_FIELDS:
        for name in (letta_name, libpq_name):
            if upper.get(name):
                fields[field] = upper[name]
                used.append(name)
                break
        else:
            fields[field] = default
    return fields, used


def _uri(fields: dict[str, str], password: str | None) -> str:
    """``postgresql://user[:password]@host:port/dbname`` with every part percent-quoted (a socket
    directory such as ``/var/run/postgresql`` is a valid host too)."""
    credentials = quote(fields["user"], safe="") + (f":{quote(password, safe='')}" if password else "")
    host = quote(fields["host"], safe="")
    return f"postgresql://{credentials}@{host}:{quote(fields['port'], safe='')}/{quote(fields['dbname'], safe='')}"


def letta_pg_uri(env: dict[str, str] | None = None) -> str:
    """The PostgreSQL DSN from the environment (see :func:`database_setting`)."""
    return database_setting(None, env, config={}).dsn


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


def setting_sources(
    db_flag: str | None,
    repo_flag: str | None,
    password_file: Path | None,
    config: dict[str, object],
) -> dict[str, str]:
    """Where each setting comes from, for ``doctor``: names of flags, variables or the config file,
    never a value that could hold a secret (the database is named by its source only)."""
    database = database_setting(db_flag, config=config)
    repository = (
        "--repo" if repo_flag
        else "LIFEBOAT_REPOSITORY" if os.environ.get("LIFEBOAT_REPOSITORY")
        else "config file 'repository'" if config.get("repository") else "not set"
    )  # fmt: skip
    secret = (
        "--password-file" if password_file
        else "LIFEBOAT_PASSWORD_FILE" if os.environ.get("LIFEBOAT_PASSWORD_FILE")
        else "config file 'password_file'" if config.get("password_file")
        else "LIFEBOAT_PASSWORD" if "LIFEBOAT_PASSWORD" in os.environ else "prompt (or not set)"
    )  # fmt: skip
    redis = "LETTA_REDIS_HOST/LETTA_REDIS_PORT" if letta_redis() else "not set (Redis steps skipped)"
    config_file = f"{DEFAULT_CONFIG} ({'read' if DEFAULT_CONFIG.exists() else 'absent'})"
    return {
        "database": database.source,
        "repository": repository,
        "passphrase": secret,
        "redis": redis,
        "config_file": config_file,
    }


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

    file = passphrase_file(password_file, config=config)
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


def passphrase_file(
    password_file: Path | None = None, *, config: dict[str, object] | None = None
) -> Path | None:
    """The file :func:`passphrase` reads: --password-file, LIFEBOAT_PASSWORD_FILE, the config
    file's ``password_file``; None when the passphrase comes from elsewhere."""
    file = password_file or _env_path("LIFEBOAT_PASSWORD_FILE")
    if file is None:
        configured = (config if config is not None else load_config()).get("password_file")
        file = Path(str(configured)).expanduser() if configured else None
    return file


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None
