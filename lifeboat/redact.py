"""Keeping secrets out of everything lifeboat prints or writes: one helper, used at the boundaries.

Two rules, applied to every text that leaves the process (stdout, stderr, logs, JSON documents,
the metrics file, drill reports):

* **by shape**: the password of any ``scheme://user:password@host`` URL (PostgreSQL DSNs, Redis
  URLs) and of a ``password=...`` connection-string keyword becomes ``***``, whatever it is;
* **by value**: every secret registered with :func:`register` (the repository passphrase, the
  database and Redis passwords lifeboat was given, the S3 secret key) becomes ``***`` wherever
  it appears, for example echoed inside a driver's parse error. Values shorter than
  :data:`MIN_VALUE_LENGTH` are only redacted by shape: replacing a short word such as ``letta``
  everywhere would mangle every message about the ``letta`` database without protecting much.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any
from urllib.parse import unquote

MASK = "***"
MIN_VALUE_LENGTH = 6

# scheme://[user]:password@  (the password may be empty; it ends at the last '@' before a '/')
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^/\s]*)(?=@)")
# password=secret / password = 'quoted secret' (libpq keyword/value connection strings)
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'?|[^\s'\"]+)", re.IGNORECASE
)
_SECRET_ENVIRONMENT = (
    "LIFEBOAT_PASSWORD",
    "LETTA_PG_PASSWORD",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_URL_ENVIRONMENT = ("LETTA_PG_URI", "LETTA_REDIS_URL", "REDIS_URL")

_known: set[str] = set()
_lock = threading.Lock()


def register(secret: str | None) -> None:
    """Redact ``secret`` (and its URL-decoded form) by value from now on."""
    if not secret:
        return
    with _lock:
        for value in {secret, unquote(secret)}:
            if len(value) >= MIN_VALUE_LENGTH:
                _known.add(value)


def register_url(url: str | None) -> None:
    """Register the password a connection URL or keyword/value string carries, if any."""
    for secret in passwords_in(url or ""):
        register(secret)


def register_environment(env: dict[str, str] | None = None) -> None:
    """Register the secrets lifeboat may read from its environment (called once at start-up)."""
    env = dict(os.environ) if env is None else env
    upper = {key.upper(): value for key, value in env.items()}
    for name in _SECRET_ENVIRONMENT:
        register(upper.get(name))
    for name in _URL_ENVIRONMENT:
        register_url(upper.get(name))


def passwords_in(text: str) -> list[str]:
    """The passwords written in ``text`` by shape (URL userinfo, ``password=`` keywords)."""
    found = [m.group("secret") for m in _URL_PASSWORD.finditer(text)]
    found += [m.group("secret").strip("'") for m in _KEYWORD_PASSWORD.finditer(text)]
    return [secret for secret in found if secret]


def redact(text: str) -> str:
    """``text`` with every password-shaped value and every registered secret replaced by ``***``."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + (MASK if m.group("secret") else ""), text)
    text = _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # longest first: a secret containing another
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_secret(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` whatever its length: for a message known to be about it."""
    text = redact(text)
    if secret:
        for value in {secret, unquote(secret)}:
            text = text.replace(value, MASK)
    return text


def redact_data(data: Any) -> Any:
    """A copy of a JSON-like value with :func:`redact` applied to every string in it (keys too)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(key): redact_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(item) for item in data]
    return data


def forget_registered() -> None:
    """Tests only: drop every registered secret."""
    with _lock:
        _known.clear()
