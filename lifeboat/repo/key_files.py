"""Repository keys (restic's ``key list/add/remove/passwd``): several passphrases, one master key.

Every key file seals the same master keys under its own passphrase (docs/FORMAT.md §3), so
adding, removing or changing a passphrase never touches data, index or snapshots:

- ``add`` writes a new key file for a new passphrase, with the argon2 parameters of the key in
  use (so a repository keeps the strength its owner chose);
- ``remove`` deletes a key file; the key in use (the one the passphrase given opened) and the
  last well-formed key are refused, as in restic: no command can lock everyone out;
- ``passwd`` adds the new key, then removes the one in use. An error or interruption in between
  removes the new key again; a crash in between leaves both passphrases working, never none.

Key ids are the key files' names (32 hex); commands accept unique prefixes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from lifeboat.errors import CorruptRepository, UsageError, note_rolled_back
from lifeboat.repo.config import KEYS_DIR, basename, key_name
from lifeboat.repo.crypto import wrap_keys
from lifeboat.repo.kdf import MAX_KEY_FILE_SIZE, KdfParams, parse_key_file
from lifeboat.repo.keys import key_file_problem
from lifeboat.repo.repository import Repository


@dataclass(frozen=True)
class KeyInfo:
    id: str
    current: bool  # the key the passphrase given opened
    created: str | None
    hostname: str | None
    damaged: str | None  # why the key file is not well-formed, if it is not


def list_keys(repo: Repository) -> list[KeyInfo]:
    """Every key file, oldest first (no key derivation: nothing is tried)."""
    _need_keys(repo)
    found = []
    for info in repo.backend.list(KEYS_DIR):
        problem = key_file_problem(repo.backend, info.name, info.size)
        document = {} if problem else _document(repo, info.name)
        found.append(
            KeyInfo(
                id=basename(info.name),
                current=info.name == repo.key_file,
                created=_text(document.get("created")),
                hostname=_text(document.get("hostname")),
                damaged=problem,
            )
        )
    return sorted(found, key=lambda k: (k.created or "", k.id))


def add_key(repo: Repository, passphrase: str) -> str:
    """A new key file opening the repository with ``passphrase``; returns its id."""
    _need_keys(repo)
    if not passphrase:
        raise UsageError("the new passphrase is empty")
    settings = json.loads(repo.config.model_dump_json())
    document = wrap_keys(
        repo.keys, passphrase, _kdf_in_use(repo), repository_version=repo.config.version, settings=settings
    )
    key_id = secrets.token_hex(16)
    repo.backend.put(key_name(key_id), json.dumps(document, indent=2).encode())
    return key_id


def remove_key(repo: Repository, ref: str) -> str:
    """Delete the key file ``ref`` names (id or unique prefix); returns its id. Refuses the key in
    use and the last well-formed key."""
    keys = list_keys(repo)
    matches = [k for k in keys if ref and k.id.startswith(ref.lower())]
    if not matches:
        raise UsageError(f"no key {ref!r} (see 'lifeboat key list')")
    if len(matches) > 1:
        raise UsageError(f"key prefix {ref!r} is ambiguous: {', '.join(k.id[:8] for k in matches)}")
    victim = matches[0]
    if victim.current:
        raise UsageError(
            f"refusing to remove key {victim.id[:8]}: it is the key in use; open the repository with "
            "another passphrase to remove it, or use 'lifeboat key passwd'"
        )
    if not victim.damaged and not [k for k in keys if k.id != victim.id and not k.damaged]:
        raise UsageError(f"refusing to remove key {victim.id[:8]}: it is the last key of the repository")
    repo.backend.delete(key_name(victim.id))
    return victim.id


def change_passphrase(repo: Repository, passphrase: str) -> tuple[str, str]:
    """Replace the key in use by a new one for ``passphrase``: (new id, removed id)."""
    _need_keys(repo)
    old = repo.key_file
    assert old is not None
    new_id = add_key(repo, passphrase)  # durable first: a crash leaves both passphrases, never none
    try:
        repo.backend.delete(old)
    except BaseException as exc:  # interrupted or failed: take the new key back, nothing changed
        repo.backend.delete(key_name(new_id))
        note_rolled_back(exc, f"the new key {new_id[:8]} was removed again")
        raise
    repo.key_file = key_name(new_id)
    return new_id, basename(old)


def _need_keys(repo: Repository) -> None:
    if not repo.config.encrypted or repo.key_file is None:
        raise UsageError("this repository is not encrypted: it has no keys")


def _kdf_in_use(repo: Repository) -> KdfParams:
    assert repo.key_file is not None
    try:
        params, _salt, _sealed = parse_key_file(_document(repo, repo.key_file))
    except CorruptRepository:
        return KdfParams()
    return params


def _document(repo: Repository, name: str) -> dict[str, object]:
    try:
        document = json.loads(repo.backend.get(name, 0, MAX_KEY_FILE_SIZE))
    except (FileNotFoundError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
