"""Creating and opening a repository safely: the config (authenticated from version 2 on) and the key files.

Everything here reads storage that anyone with write access may have changed, so the rules are
the ones of docs/FORMAT.md §4, §3 and the threat model (§15):

* a repository that has key files is never opened as unencrypted, whatever ``config`` says;
* a passphrase given for an unencrypted repository is refused (the encrypted repository the
  caller expects may have been replaced by one its attacker can read);
* key files are tried in name order; one that is not a well-formed key file (bad JSON, argon2
  parameters out of bounds, oversized) is skipped with a warning, so a planted key file can
  neither stop the search nor make it allocate without limit;
* from version 2 on, the config's settings are sealed under the master key and the outer JSON
  must agree with them; keys from a version-2 key file refuse a config of an older version.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lifeboat.errors import (
    CorruptRepository,
    RepositoryExists,
    RepositoryNotFound,
    UsageError,
    WrongPassphrase,
)
from lifeboat.repo.backends import unguarded
from lifeboat.repo.backends.base import Backend
from lifeboat.repo.backends.local import LocalBackend
from lifeboat.repo.config import CONFIG_FILE, FORMAT_NAME, KEYS_DIR, SUPPORTED_VERSIONS, RepoConfig, key_name
from lifeboat.repo.crypto import DecryptionFailed, MasterKeys, Sealer, unwrap_keys, wrap_keys
from lifeboat.repo.kdf import MAX_KEY_FILE_SIZE, KdfParams, b64decode, b64encode, parse_key_file

CONFIG_AAD = b"lifeboat:config"
OUTER_FIELDS = ("format", "version", "encryption")

log = logging.getLogger(__name__)


def read_config_document(backend: Backend) -> dict[str, Any]:
    """The config file as JSON, with a known ``format`` and a supported ``version`` (not yet trusted)."""
    try:
        raw = backend.get(CONFIG_FILE)
    except FileNotFoundError as exc:
        raise RepositoryNotFound(f"no lifeboat repository at {backend.url}") from exc
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CorruptRepository(f"repository config at {backend.url} is not valid JSON") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise CorruptRepository(f"{backend.url}/config is not a lifeboat repository config")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptRepository(f"repository config at {backend.url} has no format version")
    if version > max(SUPPORTED_VERSIONS):
        raise CorruptRepository(
            f"repository format version {version} is newer than this lifeboat supports "
            f"({max(SUPPORTED_VERSIONS)}): upgrade lifeboat"
        )
    if version not in SUPPORTED_VERSIONS:
        raise CorruptRepository(f"repository format version {version} is unknown")
    return document


def encode_config(config: RepoConfig, keys: MasterKeys) -> bytes:
    """The bytes of ``config``: clear JSON (version 1, or unencrypted), else outer JSON + sealed settings."""
    if config.version < 2 or not config.encrypted:
        return config.model_dump_json(indent=2).encode()
    sealed = Sealer(keys.encryption).seal(config.model_dump_json().encode(), CONFIG_AAD)
    outer = {field: getattr(config, field) for field in OUTER_FIELDS}
    return json.dumps({**outer, "sealed": b64encode(sealed)}, indent=2).encode()


def unencrypted_config(backend: Backend, document: dict[str, Any], passphrase: str | None) -> RepoConfig:
    """The config of a repository that says it is unencrypted, after the downgrade checks."""
    keys_present = next(iter(backend.list(KEYS_DIR)), None) is not None
    if keys_present:
        raise CorruptRepository(
            f"the config at {backend.url} says the repository is unencrypted but it has key files: "
            "refusing to open it (the config was changed; restore it from a copy)"
        )
    if passphrase:
        raise WrongPassphrase(
            f"the repository at {backend.url} is unencrypted, but a passphrase was given: refusing, "
            "since an encrypted repository may have been replaced; open it without a passphrase "
            "if it really is unencrypted"
        )
    config = _validate(backend, document)
    if config.id_key is None:
        raise CorruptRepository(f"unencrypted repository config at {backend.url} lacks its id_key")
    return config


def unlock(backend: Backend, passphrase: str | None) -> tuple[str, MasterKeys]:
    """(key file name, master keys) from the first key file ``passphrase`` opens (bad ones skipped)."""
    if not passphrase:
        raise WrongPassphrase(f"the repository at {backend.url} is encrypted: a passphrase is required")
    key_files = sorted(backend.list(KEYS_DIR), key=lambda info: info.name)
    if not key_files:
        raise CorruptRepository(f"encrypted repository at {backend.url} has no key files")
    skipped = []
    for info in key_files:
        try:
            return info.name, _try_key_file(backend, info.name, info.size, passphrase)
        except WrongPassphrase:
            continue
        except CorruptRepository as exc:
            log.warning("skipping key file %s: %s", info.name, exc)
            skipped.append(info.name)
    if len(skipped) == len(key_files):
        raise CorruptRepository(f"no usable key file in {backend.url}: every one is damaged")
    raise WrongPassphrase(f"wrong passphrase for the repository at {backend.url}")


def key_file_problem(backend: Backend, name: str, size: int) -> str | None:
    """Why the key file ``name`` is not well-formed (without deriving anything), or None."""
    if size > MAX_KEY_FILE_SIZE:
        return f"{size} bytes, more than a key file holds"
    try:
        parse_key_file(json.loads(backend.get(name, 0, MAX_KEY_FILE_SIZE)))
    except FileNotFoundError:
        return None
    except ValueError:
        return "not valid JSON"
    except CorruptRepository as exc:
        return str(exc)
    return None


def _try_key_file(backend: Backend, name: str, size: int, passphrase: str) -> MasterKeys:
    if size > MAX_KEY_FILE_SIZE:
        raise CorruptRepository(f"{size} bytes, more than a key file holds")
    try:
        document = json.loads(backend.get(name, 0, MAX_KEY_FILE_SIZE))
    except FileNotFoundError as exc:
        raise WrongPassphrase("vanished") from exc
    except ValueError as exc:
        raise CorruptRepository("not valid JSON") from exc
    try:
        return unwrap_keys(document, passphrase)
    except (ValueError, KeyError, TypeError) as exc:  # a sealed secret of the wrong shape
        raise CorruptRepository(f"its secret cannot be decoded ({exc})") from exc


def encrypted_config(backend: Backend, document: dict[str, Any], keys: MasterKeys) -> RepoConfig:
    """The authenticated config of an encrypted repository (version 1: as stored, bounded)."""
    version = document["version"]
    if version < keys.min_version:
        raise CorruptRepository(
            f"the config at {backend.url} claims format version {version}, but the key file says the "
            f"repository is version {keys.min_version}: refusing a downgraded config"
        )
    if version < 2:
        return _validate(backend, document)
    extra = sorted(set(document) - {*OUTER_FIELDS, "sealed"})
    if extra:
        raise CorruptRepository(f"the config at {backend.url} has unauthenticated fields: {', '.join(extra)}")
    try:
        inner = Sealer(keys.encryption).open(b64decode(str(document.get("sealed", ""))), CONFIG_AAD)
        settings = json.loads(inner)
    except (DecryptionFailed, ValueError) as exc:
        raise CorruptRepository(
            f"the config at {backend.url} was changed or damaged (its authentication failed)"
        ) from exc
    if not isinstance(settings, dict) or any(settings.get(f) != document.get(f) for f in OUTER_FIELDS):
        raise CorruptRepository(f"the config at {backend.url} disagrees with its sealed settings")
    return _validate(backend, settings)


def _validate(backend: Backend, document: dict[str, Any]) -> RepoConfig:
    try:
        return RepoConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CorruptRepository(
            f"repository config at {backend.url} is invalid: {where}: {first['msg']}"
        ) from exc


def write_key_file(
    backend: Backend, keys: MasterKeys, config: RepoConfig, passphrase: str, kdf: KdfParams
) -> str:
    """Store a key file of ``config``'s format that opens with ``passphrase``; returns its name.

    Version 2: with ``min_version`` and a copy of the settings (docs/FORMAT.md §4).
    """
    settings = json.loads(config.model_dump_json()) if config.version >= 2 else None
    document = wrap_keys(keys, passphrase, kdf, repository_version=config.version, settings=settings)
    name = key_name(secrets.token_hex(16))
    backend.put(name, json.dumps(document, indent=2).encode())
    return name


def check_init_target(backend: Backend, passphrase: str | None, *, encrypt: bool) -> None:
    """Refuse to init without a passphrase (fail closed), or over anything already there."""
    if encrypt and not passphrase:
        raise UsageError("an encrypted repository needs a passphrase (or explicitly opt out of encryption)")
    if not encrypt and passphrase:
        raise UsageError("a passphrase was given for an unencrypted repository")
    if backend.exists(CONFIG_FILE):
        raise RepositoryExists(f"a repository already exists at {backend.url}")
    existing = next(iter(backend.list()), None)
    if existing is not None:
        raise RepositoryExists(
            f"{backend.url} is not empty (it holds {existing.name}): refusing to init there"
        )
    _restrict_local_root(backend)


def _restrict_local_root(backend: Backend) -> None:
    backend = unguarded(backend)
    if isinstance(backend, LocalBackend):
        root = Path(backend.root)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
