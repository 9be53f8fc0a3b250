"""``upgrade-repository``: rewrite a format-1 repository's metadata as format 2, in place.

Only metadata changes (docs/FORMAT.md §13): the index files are rewritten bound to their names,
the config is sealed, and the key file the passphrase opened is replaced by a version-2 key file
that records the format version. Packs and manifests stay as they are (their format did not
change), so the upgrade is quick and needs no space beyond the index.

Format 3 differs from 2 only in its blob-id hash (BLAKE3), and ids cannot change in place: every
pack, index file and manifest names blobs by them, and later backups deduplicate against them.
So the upgrade stops at ``UPGRADE_VERSION`` (2), leaves a format-2 or 3 repository as it is, and
says how to get BLAKE3 ids: a new repository, and ``copy`` (which stores blobs under the target's ids).

Order, so that an interruption at any point leaves a repository that opens, and a second run
finishes the job: new index files (a format-1 reader accepts them), the config, the new key
file, then the old key file and the old index files are deleted.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING

import zstandard
from pydantic import BaseModel, Field

from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.repo.config import (
    BLOB_ID_HASH,
    CONFIG_FILE,
    FORMAT_VERSION,
    INDEX_DIR,
    UPGRADE_VERSION,
    basename,
    key_name,
)
from lifeboat.repo.crypto import DecryptionFailed, MasterKeys, wrap_keys
from lifeboat.repo.index import PackEntry, decode_index
from lifeboat.repo.kdf import KdfParams
from lifeboat.repo.keys import encode_config
from lifeboat.repo.locks import RepositoryLock

if TYPE_CHECKING:
    from lifeboat.repo.repository import Repository

_HASH_NAMES = {"blake2b": "BLAKE2b", "blake3": "BLAKE3"}


class UpgradeReport(BaseModel):
    """What ``lifeboat upgrade-repository --json`` prints (docs/JSON.md)."""

    repository: str
    from_version: int
    to_version: int
    index_files_rewritten: int = 0
    key_file_replaced: str | None = None
    key_files_not_upgraded: list[str] = Field(default_factory=list)  # other passphrases: still version 1
    blob_id_hash: str = "blake2b"  # the repository's blob-id hash, which no upgrade changes
    note: str | None = None  # how to get the newest format's ids when the upgrade cannot


def upgrade_repository(repo: Repository, passphrase: str | None) -> UpgradeReport:
    """Upgrade ``repo`` (opened with ``passphrase``) to ``UPGRADE_VERSION`` under the exclusive lock.

    A repository already at that version or newer keeps its version (it is never lowered).
    """
    target = max(repo.config.version, UPGRADE_VERSION)
    report = UpgradeReport(
        repository=repo.backend.url,
        from_version=repo.config.version,
        to_version=target,
        blob_id_hash=BLOB_ID_HASH[target],
        note=_id_hash_note(target),
    )
    # Not ``repo.lock()``: that loads the index, which an interrupted upgrade may have left in two forms.
    lock = RepositoryLock(repo.locks, exclusive=True).acquire()
    try:
        old_files, entries = _read_index_files_of_any_version(repo, target)
        lock.ensure_held()
        repo.config = repo.config.model_copy(update={"version": target})
        new_files = _write_index(repo, entries) if old_files else set()
        keys = replace(repo.keys, min_version=target)  # the same keys and id hash (the same ids)
        repo.backend.put(CONFIG_FILE, encode_config(repo.config, keys))
        if repo.config.encrypted:
            _replace_key_file(repo, keys, passphrase, report)
        for name in sorted(set(old_files) - new_files):
            repo.backend.delete(name)
        report.index_files_rewritten = len(set(old_files) - new_files)
        repo.load_index()
    finally:
        lock.release()
    return report


def _id_hash_note(target: int) -> str | None:
    ours, newest = BLOB_ID_HASH[target], BLOB_ID_HASH[FORMAT_VERSION]
    if ours == newest:
        return None
    return (
        f"blob ids stay keyed {_HASH_NAMES[ours]}: stored ids cannot change in place. Format "
        f"{FORMAT_VERSION} ({_HASH_NAMES[newest]} ids, faster backups) needs a new repository: "
        "`lifeboat init` one and `lifeboat copy` the snapshots into it"
    )


def _read_index_files_of_any_version(repo: Repository, target: int) -> tuple[list[str], list[PackEntry]]:
    """Index files not yet in the form of ``target``, and the packs they list (to be listed anew)."""
    old: list[str] = []
    entries: list[PackEntry] = []
    for info in repo.backend.list(INDEX_DIR):
        data = repo.backend.get(info.name)
        for version in (target, 1):
            try:
                decoded = decode_index(repo.sealer, basename(info.name), data, version)
            except (DecryptionFailed, ValueError, KeyError, TypeError, zstandard.ZstdError):
                continue
            if version != target:
                old.append(info.name)
                entries.extend(decoded)
            break
        else:
            raise CorruptRepository(
                f"upgrade stopped before changing anything: index file {info.name} cannot be decoded; "
                "run 'lifeboat check'"
            )
    return old, entries


def _write_index(repo: Repository, entries: list[PackEntry], per_file: int = 512) -> set[str]:
    names = set()
    for start in range(0, len(entries), per_file):
        name, data = repo.encode_index_file(entries[start : start + per_file])
        repo.backend.put(name, data)
        names.add(name)
    return names


def _replace_key_file(
    repo: Repository, keys: MasterKeys, passphrase: str | None, report: UpgradeReport
) -> None:
    """Write a version-2 key file for ``passphrase`` (same argon2 parameters), then drop the old one."""
    old = repo.key_file
    if old is None or not passphrase:
        raise UsageError("upgrading an encrypted repository needs its passphrase")
    document = json.loads(repo.backend.get(old))
    if document.get("version") == 2:
        report.key_files_not_upgraded = _other_v1_key_files(repo, old)
        return
    params = KdfParams(document["time_cost"], document["memory_cost"], document["parallelism"])
    new = key_name(secrets.token_hex(16))
    settings = json.loads(repo.config.model_dump_json())
    new_document = wrap_keys(
        keys, passphrase, params, repository_version=repo.config.version, settings=settings
    )
    repo.backend.put(new, json.dumps(new_document, indent=2).encode())
    repo.backend.delete(old)
    repo.keys, repo.key_file = keys, new
    report.key_file_replaced = old
    report.key_files_not_upgraded = _other_v1_key_files(repo, new)


def _other_v1_key_files(repo: Repository, own: str) -> list[str]:
    others = []
    for info in repo.backend.list("keys/"):
        if info.name == own:
            continue
        try:
            version = json.loads(repo.backend.get(info.name)).get("version")
        except (ValueError, AttributeError):
            version = None
        if version != 2:
            others.append(info.name)
    return sorted(others)
