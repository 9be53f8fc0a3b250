"""Encryption: known plaintext appears nowhere, wrong passphrase, tampering is detected, fail closed."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest
import zstandard
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK

from lifeboat.errors import CorruptBlob, CorruptRepository, WrongPassphrase
from lifeboat.repo import RecordBatch, Repository, Snapshot
from lifeboat.repo.crypto import MasterKeys, Sealer

SECRET = b"sk-live-PROVIDER-KEY-0123456789abcdef"
AGENT = "agent-4f1c9a7e-secret-name"
# Random bytes: found in an unencrypted repository (in clear or inside a zstd frame), never in an encrypted one.
RANDOM_PAYLOAD = random.Random(7).randbytes(8192).replace(b"\n", b" ")
NEEDLES = [RANDOM_PAYLOAD[1000:1064], RANDOM_PAYLOAD[5000:5064]]


def fill(repo: Repository) -> None:
    rows = [f"{n}\t{AGENT}\tmemory: the user's key is {SECRET.decode()} #{n}\n".encode() for n in range(3000)]
    rows[1234] = b"1234\t" + AGENT.encode() + b"\t" + RANDOM_PAYLOAD + b"\n"
    with repo.lock():
        with repo.writer() as writer:
            stream = writer.write_stream(
                "letta.messages", [RecordBatch(rows, [AGENT] * len(rows))], {"note": "x"}
            )
        repo.save_snapshot(
            Snapshot(streams=[stream], tags=["tag-" + AGENT], documents={"catalog": {"name": AGENT}})
        )


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def readable(data: bytes) -> bytes:
    """A file's bytes plus the plaintext of every zstd frame in it: what anyone without the keys reads.

    Compression alone is no protection, and whether zstd keeps a literal run verbatim depends on
    its level, so the search looks inside every decodable frame too.
    """
    parts = [data]
    position = data.find(ZSTD_MAGIC)
    while position != -1:
        with contextlib.suppress(zstandard.ZstdError):
            parts.append(zstandard.ZstdDecompressor().decompressobj().decompress(data[position:]))
        position = data.find(ZSTD_MAGIC, position + 1)
    return b"".join(parts)


def all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(path, readable(path.read_bytes())) for path in root.rglob("*") if path.is_file()]


def test_known_plaintext_appears_in_no_file(repo: Repository, repo_path: Path) -> None:
    fill(repo)
    files = all_bytes(repo_path)
    assert {path.relative_to(repo_path).parts[0] for path, _ in files} == {
        "config",
        "keys",
        "data",
        "index",
        "snapshots",
    }
    needles = [
        *NEEDLES,
        SECRET,
        AGENT.encode(),
        b"letta.messages",
        b"memory: the user",
        SECRET.hex().encode(),
    ]
    for path, data in files:
        for needle in needles:
            assert needle not in data, (path, needle)


def test_unencrypted_repository_does_store_plaintext_in_clear(
    plain_repo: Repository, repo_path: Path
) -> None:
    """The control experiment: the needle test above would find the secret if it were not encrypted."""
    fill(plain_repo)
    assert all(any(needle in data for _path, data in all_bytes(repo_path)) for needle in NEEDLES)


def test_wrong_passphrase_is_a_clear_error(repo: Repository, repo_path: Path) -> None:
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Repository.open(repo_path, PASSPHRASE + "!")


def test_several_key_files_any_passphrase_opens(repo: Repository, repo_path: Path) -> None:
    import json
    import secrets

    from lifeboat.repo.crypto import wrap_keys

    second = wrap_keys(repo.keys, "second passphrase", FAST_KDF)
    repo.backend.put(f"keys/{secrets.token_hex(16)}", json.dumps(second).encode())
    assert Repository.open(repo_path, "second passphrase").keys == repo.keys
    assert Repository.open(repo_path, PASSPHRASE).keys == repo.keys


def test_tampered_manifest_is_refused(repo: Repository, repo_path: Path) -> None:
    fill(repo)
    (manifest,) = (repo_path / "snapshots").iterdir()
    data = bytearray(manifest.read_bytes())
    data[40] ^= 1
    manifest.write_bytes(bytes(data))
    with pytest.raises(CorruptRepository, match="cannot be decoded"):
        repo.load_snapshot("latest")


def test_renamed_manifest_is_refused(repo: Repository, repo_path: Path) -> None:
    """The snapshot id is bound into the seal: a manifest cannot be passed off as another snapshot."""
    fill(repo)
    (manifest,) = (repo_path / "snapshots").iterdir()
    manifest.rename(manifest.with_name("f" * 64))
    with pytest.raises(CorruptRepository):
        repo.load_snapshot("f" * 64)


def test_blob_body_swapped_between_ids_is_detected(repo: Repository) -> None:
    fill(repo)
    snapshot = repo.load_snapshot("latest")
    first, second = snapshot.streams[0].blobs[:2]
    location = repo.index.get(second.id)
    assert location is not None
    repo.index._blobs[first.id] = location  # the index now points the first id at the second body
    with pytest.raises(CorruptBlob) as caught:
        repo.read_blob(first.id)
    assert caught.value.blob_id == first.id


def test_sealer_fails_closed_without_key() -> None:
    """A repository whose config says encrypted cannot be used with an identity sealer."""
    from lifeboat.repo.backends import LocalBackend
    from lifeboat.repo.config import RepoConfig

    with pytest.raises(CorruptRepository):
        Repository(LocalBackend("/nonexistent"), RepoConfig(), MasterKeys(encryption=None, id_key=b"k" * 32))
    assert Sealer(b"k" * 32).seal(b"plain", b"") != b"plain"


def test_init_writes_no_plaintext_key_material(repo: Repository, repo_path: Path) -> None:
    for _path, data in all_bytes(repo_path):
        assert repo.keys.encryption is not None
        assert repo.keys.encryption not in data and repo.keys.id_key not in data
    for path in [repo_path / "config", *list((repo_path / "keys").iterdir())]:
        import base64

        text = path.read_bytes()
        assert base64.b64encode(repo.keys.id_key) not in text
        assert base64.b64encode(repo.keys.encryption) not in text
    assert SMALL_CHUNKS and SMALL_PACK  # fixtures' parameters are in the config; nothing secret is
