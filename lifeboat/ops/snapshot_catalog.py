"""A database snapshot read with its agent catalog set aside as JSON text (:func:`read_snapshot`).

The agent catalog (the ``letta`` document's ``agents``, docs/FORMAT.md §16.2) is most of a
manifest: ~365 bytes of JSON an agent, ~2.6 KB once parsed into Python objects, so restoring one
agent of a 20,000-agent deployment parsed ~50 MB of it to look one id up. Here the manifest is
parsed with the catalog's JSON array cut out, where lifeboat writes it (between the ``"agents":``
key and the ``"runs_in_flight"`` key of the letta document) and only if the cut checks out:

- the manifest without the array parses, with the placeholder exactly at the letta document's
  ``agents`` (so the cut array was that value, nothing else);
- the array parses as a JSON array of objects with a string ``id`` (what every catalog entry
  must be), of which only the ids are kept.

Then the manifest read is the one a whole parse gives, with the catalog's entries parsed when
asked for (:meth:`HeldCatalog.entries`, through :mod:`lifeboat.ops.snapshot_layout`), or one
entry by id (:meth:`HeldCatalog.entry`). A manifest laid out otherwise is parsed whole.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from lifeboat.errors import CorruptRepository
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository, checked_snapshot, decode_manifest

KEY = b'"agents":'
AFTER = b',"runs_in_flight":'
PLACEHOLDER = "lifeboat:catalog-set-aside"


class _ObjectId(str):
    """A JSON object reduced to its string ``id`` (not to be taken for a string in the array)."""


def _id_of(pairs: list[tuple[str, Any]]) -> Any:
    """A JSON object as its ``id`` when that is a string (the last ``id``, as in a dict), else None."""
    for key, value in reversed(pairs):
        if key == "id":
            return _ObjectId(value) if isinstance(value, str) else None
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def catalog_ids(text: bytes) -> list[str] | None:
    """The ids of a catalog's JSON array, None unless it is one array of objects with a string
    ``id`` (each object is reduced to its id as it is parsed: a 20,000-agent catalog is read in
    ~2 MB, where a validating parse held ~30 MB)."""
    try:
        ids = json.loads(text, object_pairs_hook=_id_of, parse_constant=_no_constant)
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(ids, list) or not all(isinstance(agent_id, _ObjectId) for agent_id in ids):
        return None
    return [str(agent_id) for agent_id in ids]


class HeldCatalog:
    """A catalog as its JSON text (an array of objects with string ids, checked when its ids were
    read with it, else when they are first asked for) and its ids."""

    def __init__(self, text: bytes, ids: list[str] | None) -> None:
        self.text = text
        self._ids = ids

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            ids = catalog_ids(self.text)
            if ids is None:
                raise CorruptRepository("the snapshot's agent catalog cannot be decoded")
            self._ids = ids
        return self._ids

    def entries(self) -> list[Any]:
        """Every entry, as stored (JSON objects)."""
        try:
            return list(json.loads(self.text))
        except ValueError as exc:  # checked when read: not expected
            raise CorruptRepository(f"the snapshot's agent catalog cannot be decoded ({exc})") from None

    def entry(self, agent_id: str) -> dict[str, Any]:
        """The stored entry of ``agent_id`` (one of ``ids``): found by its bytes when its id is
        printable without quote or backslash (JSON writes such an id as itself) and is there once,
        else parsed out of the whole catalog."""
        found = self._find(agent_id)
        if found is not None:
            return found
        return [entry for entry in self.entries() if entry["id"] == agent_id][-1]  # the last, as a dict by id

    def _find(self, agent_id: str) -> dict[str, Any] | None:
        if not agent_id.isprintable() or '"' in agent_id or "\\" in agent_id:
            return None
        start = b'{"id":"' + agent_id.encode() + b'"'
        at = self.text.find(start)
        if at < 1 or self.text[at - 1 : at] not in (b"[", b",") or self.text.find(start, at + 1) != -1:
            return None
        end = self.text.find(b'{"id":', at + 1)
        try:
            window = self.text[at : end if end != -1 else len(self.text)].decode()
            value, stop = json.JSONDecoder().raw_decode(window)
        except ValueError:  # UnicodeDecodeError included
            return None
        if (
            not isinstance(value, dict)
            or value.get("id") != agent_id
            or window[stop : stop + 1] not in (",", "]")
        ):
            return None
        return value


class LightSnapshot(Snapshot):
    """A snapshot whose agent catalog, if set aside, is :attr:`held_catalog`."""

    _held: HeldCatalog | None = PrivateAttr(default=None)

    @property
    def held_catalog(self) -> HeldCatalog | None:
        return self._held


def read_snapshot(repo: Repository, snapshot_id: str, *, read_ids: bool = True) -> Snapshot:
    """The snapshot ``snapshot_id``, its agent catalog set aside when the manifest allows it (see
    the module docstring, else parsed whole); ``CorruptRepository`` when it cannot be decoded.

    ``read_ids=False``: the catalog's ids are not read now (the second check of the module
    docstring is left to whoever asks for them, where it raises instead of parsing the manifest
    whole); for a reader that validates the catalog's entries itself (an incremental backup's
    parent: 12 ms of 35 for 5,000 agents)."""
    data = repo.read_manifest(snapshot_id)
    snapshot = _light(data, read_ids)
    if snapshot is None:
        return decode_manifest(snapshot_id, data)
    return checked_snapshot(snapshot_id, snapshot)


class _HeaderDocuments(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source: Any = None
    letta: Any = None


class _Header(BaseModel):
    """What choosing a snapshot reads of a manifest (the rest is parsed but not kept)."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: datetime
    hostname: str
    tags: list[str] = []
    format_version: int
    documents: _HeaderDocuments = _HeaderDocuments()


def read_header(repo: Repository, snapshot_id: str) -> Snapshot:
    """The snapshot ``snapshot_id`` with no streams and, of its documents, only ``source``: what a
    snapshot filter and the newest-first choice look at (``--source``, ``--host``, ``--tag``, the
    time). Choosing the newest reads every manifest; each is then parsed without its catalog and
    kept as a few small objects (read the chosen one with :func:`read_snapshot`)."""
    data = repo.read_manifest(snapshot_id)
    header = None
    cut = _set_aside(data)
    if cut is not None:  # the header fields are outside the cut, which must be letta.agents
        try:
            header = _Header.model_validate_json(cut[0])
        except ValidationError:
            header = None
        if header is not None and not _placeholder_in({"letta": header.documents.letta}):
            header = None
    try:
        header = header or _Header.model_validate_json(data)
    except ValidationError as exc:
        raise CorruptRepository(f"snapshot {snapshot_id} cannot be decoded ({exc})") from exc
    documents = {} if header.documents.source is None else {"source": header.documents.source}
    fields = header.model_dump(exclude={"documents"})
    return checked_snapshot(snapshot_id, Snapshot.model_construct(**fields, streams=[], documents=documents))


def _light(data: bytes, read_ids: bool = True) -> LightSnapshot | None:
    """The snapshot with its catalog set aside, or None when the cut does not check out (its
    ids left unread unless ``read_ids``)."""
    cut = _set_aside(data)
    if cut is None:
        return None
    rest, catalog = cut
    try:
        snapshot = LightSnapshot.model_validate_json(rest)
    except ValidationError:
        return None  # parsed whole: it fails there as it would have
    ids = catalog_ids(catalog) if read_ids else None
    if (read_ids and ids is None) or not _placeholder_in(snapshot.documents):
        return None  # parsed whole: the catalog is checked where it is used, as ever
    snapshot._held = HeldCatalog(catalog, ids)
    return snapshot


def _set_aside(data: bytes) -> tuple[bytes, bytes] | None:
    """(the manifest with the placeholder in place of the catalog array, the array), or None when
    the manifest has no catalog array where lifeboat writes it."""
    key = data.find(KEY + b"[")
    if key < 1 or data[key - 1 : key] not in (b"{", b",") or PLACEHOLDER.encode() in data:
        return None
    start = key + len(KEY)
    after = data.find(b"]" + AFTER, start)
    if after == -1:
        return None
    placeholder = json.dumps(PLACEHOLDER).encode()
    return data[:start] + placeholder + data[after + 1 :], data[start : after + 1]


def _placeholder_in(documents: dict[str, Any]) -> bool:
    letta = documents.get("letta")
    return isinstance(letta, dict) and letta.get("agents") == PLACEHOLDER
