"""A repository in an S3-compatible bucket (AWS, MinIO, Ceph, R2, moto...).

URL: ``s3://bucket/optional/prefix``. The endpoint comes from ``LIFEBOAT_S3_ENDPOINT`` or
``AWS_ENDPOINT_URL`` (unset = AWS); credentials and region from the usual boto3 chain.
A single PUT is atomic in S3, so ``put`` needs no temp-and-rename dance.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lifeboat.repo.backends.base import FileInfo, check_name

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ENDPOINT_VARIABLES = ("LIFEBOAT_S3_ENDPOINT", "AWS_ENDPOINT_URL")
# A missing bucket reads like an empty one: opening it says "no repository", not a stack trace.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b/``); the prefix is empty or ends with ``/``."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


def endpoint_from_env(env: dict[str, str] | None = None) -> str | None:
    env = dict(os.environ) if env is None else env
    for variable in ENDPOINT_VARIABLES:
        if env.get(variable):
            return env[variable]
    return None


class S3Backend:
    """Objects ``<prefix><name>`` in one bucket. boto3 clients are thread-safe, so one is shared."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, client: S3Client | None = None) -> None:
        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        if client is None:
            import boto3
            from botocore.config import Config

            # One attempt: the storage boundary (guarded.py) retries, in one place for every backend.
            # (botocore's "max_attempts" counts retries, so it gave two attempts; "total" counts all.)
            config = Config(
                retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=10, read_timeout=60
            )
            client = boto3.client("s3", endpoint_url=endpoint_url or endpoint_from_env(), config=config)
        self._client = client

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r})"

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def list(self, prefix: str = "") -> Iterator[FileInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    modified = item.get("LastModified")
                    mtime = modified.timestamp() if modified is not None else None
                    yield FileInfo(item["Key"][len(self.prefix) :], item["Size"], mtime)
        except self._client.exceptions.NoSuchBucket:
            return

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(name)}
        if length == 0:
            self.size(name)  # still raise FileNotFoundError for a missing object
            return b""
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            arguments["Range"] = f"bytes={offset}-{end}"
        try:
            response = self._client.get_object(**arguments)
        except self._client.exceptions.ClientError as exc:
            code = _error_code(exc)
            if code in MISSING_CODES:
                raise FileNotFoundError(f"{self.url}: {name} ({code})") from exc
            if code == "InvalidRange":  # offset at or past the end of the object
                return b""
            raise
        return response["Body"].read()

    def put(self, name: str, data: bytes | bytearray) -> None:
        # botocore and urllib3 hash and send a bytearray as they do bytes, without a copy (the stubs
        # do not list it); a pack is the bytearray it was built in (repo/packs.py).
        self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)  # type: ignore[arg-type]

    def delete(self, name: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def exists(self, name: str) -> bool:
        try:
            self.size(name)
        except FileNotFoundError:
            return False
        return True

    def size(self, name: str) -> int:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._key(name))
        except self._client.exceptions.ClientError as exc:
            if _error_code(exc) in MISSING_CODES:
                raise FileNotFoundError(f"{self.url}: {name}") from exc
            raise
        return int(response["ContentLength"])


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
