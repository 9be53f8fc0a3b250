"""What the repository's parts (the writer, check, index maintenance) need of an opened repository.

A Protocol that :class:`lifeboat.repo.repository.Repository` satisfies, so those modules do not
import ``repository.py``, which builds on them: the dependency runs one way, with no import circle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from lifeboat.repo.backends import Backend
from lifeboat.repo.config import RepoConfig
from lifeboat.repo.crypto import MasterKeys, Sealer
from lifeboat.repo.index import Index, IndexFile, PackEntry
from lifeboat.repo.locks import LockInfo
from lifeboat.repo.manifest import Snapshot


class OpenRepository(Protocol):
    """An opened repository: its storage, settings, keys and index, and the few reads the parts use."""

    backend: Backend
    config: RepoConfig
    keys: MasterKeys
    sealer: Sealer

    @property
    def index(self) -> Index: ...

    def load_index(self) -> None: ...

    def stored_packs(self) -> dict[str, int]: ...

    def encode_index_file(
        self, entries: Iterable[PackEntry], supersedes: Sequence[str] = ()
    ) -> tuple[str, bytes]: ...

    def read_index_file(self, name: str, data: bytes) -> IndexFile: ...

    def list_locks(self) -> list[LockInfo]: ...

    def read_blob(self, blob_id: str, *, trust_aead: bool = False) -> bytes: ...

    def snapshot_ids(self) -> list[str]: ...

    def read_snapshot(self, snapshot_id: str) -> Snapshot: ...
