"""Small sealed JSON documents kept beside the snapshots, e.g. the history of restore drills.

    <kind>/<id> = seal(zstd(JSON), aad = "lifeboat:document:" || kind || "/" || id)

``id`` is ``<UTC time as YYYYmmddTHHMMSSZ>-<8 hex>``, so names sort by time. Documents are
written once and never needed to read a snapshot: prune, check and copy ignore them.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import zstandard

from lifeboat.errors import CorruptRepository, UsageError
from lifeboat.repo.blobs import compress, decompress
from lifeboat.repo.config import basename
from lifeboat.repo.crypto import DecryptionFailed

if TYPE_CHECKING:
    from lifeboat.repo.repository import Repository

KINDS = ("drills",)
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


def _aad(kind: str, doc_id: str) -> bytes:
    return f"lifeboat:document:{kind}/{doc_id}".encode("ascii")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UsageError(f"unknown document kind {kind!r}; known: {', '.join(KINDS)}")


def new_document_id(when: datetime | None = None) -> str:
    return f"{(when or datetime.now(UTC)).astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def put_document(repo: Repository, kind: str, payload: dict[str, Any], doc_id: str | None = None) -> str:
    """Store one document; returns its id."""
    _check_kind(kind)
    doc_id = doc_id or new_document_id()
    if not _ID.match(doc_id):
        raise UsageError(f"invalid document id {doc_id!r}")
    data = compress(json.dumps(payload, default=str, separators=(",", ":")).encode())
    repo.backend.put(f"{kind}/{doc_id}", repo.sealer.seal(data, _aad(kind, doc_id)))
    return doc_id


def read_document(repo: Repository, kind: str, doc_id: str) -> dict[str, Any]:
    _check_kind(kind)
    raw = repo.backend.get(f"{kind}/{doc_id}")
    try:
        document = json.loads(decompress(repo.sealer.open(raw, _aad(kind, doc_id))))
    except (DecryptionFailed, ValueError, zstandard.ZstdError) as exc:
        raise CorruptRepository(f"document {kind}/{doc_id} cannot be decoded ({exc})") from exc
    if not isinstance(document, dict):
        raise CorruptRepository(f"document {kind}/{doc_id} is not a JSON object")
    return document


def list_documents(
    repo: Repository, kind: str, *, limit: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(id, document) oldest first; only the newest ``limit`` when given. Undecodable ones are skipped."""
    _check_kind(kind)
    ids = sorted(
        basename(info.name) for info in repo.backend.list(f"{kind}/") if _ID.match(basename(info.name))
    )
    if limit is not None:
        ids = ids[-limit:] if limit > 0 else []
    documents = []
    for doc_id in ids:
        try:
            documents.append((doc_id, read_document(repo, kind, doc_id)))
        except (CorruptRepository, FileNotFoundError):
            continue
    return documents
