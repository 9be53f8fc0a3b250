"""A second reader, written only from docs/FORMAT.md (no lifeboat.repo imports), reads what lifeboat writes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import blake3
import pytest
import zstandard
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from repo_testing import FAST_KDF, PASSPHRASE, SMALL_CHUNKS, SMALL_PACK, make_rows, row_key

from lifeboat.repo import RecordBatch, Repository, Snapshot  # only to write the sample repository


class FormatReader:
    """Reads a local repository directory following FORMAT.md, section by section (formats 3 and 2)."""

    def __init__(self, root: Path, passphrase: str | None) -> None:
        self.root = root
        outer = json.loads(self.file("config"))  # §3
        assert outer["format"] == "lifeboat-repository"
        self.version = outer["version"]  # authenticated below: the sealed settings must agree
        assert self.version in (2, 3)
        if outer["encryption"] == "none":
            assert not self.names("keys")
            self.enc_key: bytes | None = None
            self.config = outer
            self.id_key = base64.b64decode(self.config["id_key"])
        else:
            assert outer["encryption"] == "aes-256-gcm"
            assert set(outer) == {"format", "version", "encryption", "sealed"}
            assert passphrase is not None
            self.enc_key, self.id_key = self.unlock(passphrase)
            self.config = json.loads(self.open(base64.b64decode(outer["sealed"]), b"lifeboat:config"))
            assert all(self.config[field] == outer[field] for field in ("format", "version", "encryption"))

    def file(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def names(self, directory: str) -> list[str]:
        base = self.root / directory
        return (
            sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())
            if base.exists()
            else []
        )

    def unlock(self, passphrase: str) -> tuple[bytes, bytes]:  # §4
        for name in self.names("keys"):
            key_file = json.loads(self.file(name))
            wrapping = hash_secret_raw(
                passphrase.encode(), base64.b64decode(key_file["salt"]), time_cost=key_file["time_cost"],
                memory_cost=key_file["memory_cost"], parallelism=key_file["parallelism"], hash_len=32, type=Type.ID,
            )  # fmt: skip
            sealed = base64.b64decode(key_file["data"])
            secret = json.loads(AESGCM(wrapping).decrypt(sealed[:12], sealed[12:], b"lifeboat:key"))
            assert key_file["version"] == 2 and secret["min_version"] == self.version
            return base64.b64decode(secret["encryption"]), base64.b64decode(secret["id"])
        raise AssertionError("no key file")

    def open(self, sealed: bytes, aad: bytes) -> bytes:  # §4 sealing
        if self.enc_key is None:
            return sealed
        return AESGCM(self.enc_key).decrypt(sealed[:12], sealed[12:], aad)

    def json_file(self, name: str, aad: bytes) -> Any:
        return json.loads(zstandard.ZstdDecompressor().decompress(self.open(self.file(name), aad)))

    def index(self) -> dict[str, tuple[str, int, int, int]]:  # §7
        blobs, documents = {}, {}
        for name in self.names("index"):
            index_id = Path(name).name
            opened = self.open(self.file(name), b"lifeboat:index:" + index_id.encode())
            assert hashlib.sha256(opened).hexdigest() == index_id
            documents[index_id] = json.loads(zstandard.ZstdDecompressor().decompress(opened))
            assert documents[index_id]["version"] == 2
        superseded = {old for document in documents.values() for old in document.get("supersedes", [])}
        for index_id, document in documents.items():
            if index_id in superseded:
                continue
            for pack in document["packs"]:
                for blob in pack["blobs"]:
                    blobs[blob["id"]] = (pack["id"], blob["offset"], blob["length"], blob["raw_size"])
        return blobs

    def pack_trailer(self, pack_id: str) -> list[dict[str, Any]]:  # §6
        data = self.file(f"data/{pack_id[:2]}/{pack_id}")
        assert hashlib.sha256(data).hexdigest() == pack_id
        assert data[-8:-4] == b"LBP1"
        (length,) = struct.unpack("<I", data[-4:])
        trailer = self.open(data[-8 - length : -8], b"lifeboat:pack-trailer")
        return json.loads(zstandard.ZstdDecompressor().decompress(trailer))["blobs"]

    def blob(self, blob_id: str, index: dict[str, tuple[str, int, int, int]]) -> bytes:  # §5
        pack_id, offset, length, raw_size = index[blob_id]
        with open(self.root / f"data/{pack_id[:2]}/{pack_id}", "rb") as handle:
            handle.seek(offset)
            body = handle.read(length)
        plaintext = zstandard.ZstdDecompressor().decompress(self.open(body, bytes.fromhex(blob_id)))
        assert len(plaintext) == raw_size
        assert self.blob_id(plaintext) == blob_id
        return plaintext

    def blob_id(self, plaintext: bytes) -> str:  # §5; format 2: §13
        if self.version == 3:
            return blake3.blake3(plaintext, key=self.id_key).hexdigest()
        return hashlib.blake2b(plaintext, key=self.id_key, digest_size=32).hexdigest()

    def snapshots(self) -> list[dict[str, Any]]:  # §8
        result = []
        for name in self.names("snapshots"):
            snapshot_id = Path(name).name
            manifest = self.json_file(name, b"lifeboat:snapshot:" + snapshot_id.encode())
            assert manifest["id"] == snapshot_id and manifest["format_version"] == 1
            result.append(manifest)
        return result

    def records(self, stream: dict[str, Any], index: dict[str, tuple[str, int, int, int]]) -> list[bytes]:
        data = b"".join(self.blob(ref["id"], index) for ref in stream["blobs"])
        return [line + b"\n" for line in data.split(b"\n")[:-1]]

    def locks(self) -> list[dict[str, Any]]:  # §9
        return [json.loads(self.open(self.file(name), b"lifeboat:lock")) for name in self.names("locks")]

    def chunker_seed(self) -> int:  # §10
        return int.from_bytes(
            hashlib.blake2b(b"lifeboat:chunker", key=self.id_key, digest_size=4).digest(), "little"
        )


def write_sample(
    path: Path, *, encrypt: bool, version: int | None = None
) -> tuple[Repository, dict[str, list[bytes]]]:
    """A repository of ``version`` (None: what ``init`` writes) holding one snapshot of two tables."""
    options: dict[str, Any] = {"chunker": SMALL_CHUNKS, "pack_size": SMALL_PACK}
    if version is not None:
        options["version"] = version
    repo = (
        Repository.init(path, PASSPHRASE, kdf=FAST_KDF, **options)
        if encrypt
        else Repository.init(path, None, encrypt=False, **options)
    )
    tables = {"agents": sorted(make_rows(1500, seed=3), key=row_key), "messages": make_rows(2500, seed=4)}
    with repo.writer() as writer:
        streams = [
            writer.write_stream(
                name, [RecordBatch(rows, [row_key(r) for r in rows])], {"columns": ["id", "agent"]}
            )
            for name, rows in tables.items()
        ]
    repo.save_snapshot(Snapshot(streams=streams, tags=["nightly"], documents={"schema": {"ddl": "x"}}))
    return repo, tables


@pytest.mark.parametrize("version", [None, 2], ids=["new", "format-2"])
@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "unencrypted"])
def test_independent_reader_reads_the_repository(tmp_path: Path, encrypt: bool, version: int | None) -> None:
    repo, tables = write_sample(tmp_path / "repo", encrypt=encrypt, version=version)
    reader = FormatReader(tmp_path / "repo", PASSPHRASE if encrypt else None)
    assert reader.version == (version or 3) == reader.config["version"]
    index = reader.index()
    (manifest,) = reader.snapshots()
    assert manifest["tags"] == ["nightly"] and manifest["documents"] == {"schema": {"ddl": "x"}}
    for stream in manifest["streams"]:
        rows = tables[stream["name"]]
        assert reader.records(stream, index) == rows
        assert sum(ref["records"] for ref in stream["blobs"]) == len(rows)
        position = 0
        for ref in stream["blobs"]:  # zone maps hold the min/max key of each blob's records
            keys = [row_key(row) for row in rows[position : position + ref["records"]]]
            assert (ref["zone_min"], ref["zone_max"]) == (min(keys), max(keys))
            position += ref["records"]
    for pack_id in {location[0] for location in index.values()}:  # trailers agree with the index
        for entry in reader.pack_trailer(pack_id):
            assert index[entry["id"]] == (pack_id, entry["offset"], entry["length"], entry["raw_size"])
    with repo.lock():
        (lock,) = reader.locks()
    assert lock["pid"] == os.getpid() and lock["exclusive"] is False


def test_new_blob_ids_are_keyed_blake3_and_format_2_ids_keyed_blake2b(tmp_path: Path) -> None:
    """§5 and §13, recomputed here from the plaintext and the id key alone (``reader.blob``
    checks each blob against the hash of the repository's version; this names the two hashes)."""
    for version, name in ((None, "blake3"), (2, "blake2b")):
        root = tmp_path / name
        write_sample(root, encrypt=True, version=version)
        reader = FormatReader(root, PASSPHRASE)
        index = reader.index()
        for blob_id in index:
            plaintext = reader.blob(blob_id, index)
            keyed_blake3 = blake3.blake3(plaintext, key=reader.id_key).hexdigest()
            keyed_blake2b = hashlib.blake2b(plaintext, key=reader.id_key, digest_size=32).hexdigest()
            assert blob_id == {"blake3": keyed_blake3, "blake2b": keyed_blake2b}[name]
            assert keyed_blake3 != keyed_blake2b


def test_chunking_rules_of_section_10(tmp_path: Path) -> None:
    """A writer following §10 cuts exactly where lifeboat cuts (so it would deduplicate with it)."""
    import zlib

    _, tables = write_sample(tmp_path / "repo", encrypt=True)
    reader = FormatReader(tmp_path / "repo", PASSPHRASE)
    chunker = reader.config["chunker"]
    scale = 2**32 // (chunker["avg_size"] - chunker["min_size"])
    seed = reader.chunker_seed()
    expected, size = [0], 0
    for record in tables["messages"]:
        if size and size + len(record) > chunker["max_size"]:
            expected.append(0)
            size = 0
        expected[-1] += 1
        size += len(record)
        if size >= chunker["min_size"] and (
            zlib.crc32(record[:-1], seed) < len(record) * scale or size >= chunker["max_size"]
        ):
            expected.append(0)
            size = 0
    expected = [count for count in expected if count]
    (manifest,) = reader.snapshots()
    stream = next(s for s in manifest["streams"] if s["name"] == "messages")
    assert [ref["records"] for ref in stream["blobs"]] == expected


def test_reader_ignores_superseded_index_files(tmp_path: Path) -> None:
    """§7: an index file that a later one supersedes (here: put back after a prune) is ignored."""
    import shutil

    from lifeboat.repo.prune import prune

    repo, tables = write_sample(tmp_path / "repo", encrypt=True)
    with repo.writer() as writer:
        stream = writer.write_stream("other", [RecordBatch(make_rows(800, seed=5))])
    forgotten = Snapshot(streams=[stream])
    repo.save_snapshot(forgotten)
    shutil.copytree(tmp_path / "repo" / "index", tmp_path / "saved")
    repo.delete_snapshot(forgotten.id)
    prune(repo)
    for saved in (tmp_path / "saved").iterdir():
        shutil.copy(saved, tmp_path / "repo" / "index" / saved.name)
    reader = FormatReader(tmp_path / "repo", PASSPHRASE)
    index = reader.index()
    assert not forgotten.blob_ids() & set(index)
    (manifest,) = reader.snapshots()
    for stream_document in manifest["streams"]:
        assert reader.records(stream_document, index) == tables[stream_document["name"]]
