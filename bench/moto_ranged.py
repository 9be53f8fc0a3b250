"""moto's S3 server, except that a ranged GET reads only the requested bytes of the object.

    .venv/bin/python bench/moto_ranged.py -H 127.0.0.1 -p 5000      # same options as moto_server

moto 5 answers ``GET`` with ``Range: bytes=a-b`` by reading the whole object out of its buffer and
slicing it (``FakeKey.value``, then ``S3Response._handle_range_header``). lifeboat reads each blob
with one ranged GET into a pack of up to 32 MiB, so under plain moto every ~200 KB blob costs the
server a 32 MiB copy: measured on this machine, 16 ms of moto CPU per ranged GET into a 32 MiB
object against 1.9 ms for a whole 200 KB object. Real S3 does not read the whole object for a range.
This launcher (used by ``bench/backup_restore.py --s3-ranges``) makes moto read just the range, so
the S3 rows measure lifeboat's S3 path rather than moto's copies; everything else is moto as is.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3 import models, responses
from moto.server import main

_REQUEST = threading.local()  # set while moto serves a GET that carries one plain byte range


class _RangeReader:
    """An object's bytes as the range handler uses them: its length, and one slice read on demand."""

    def __init__(self, key: Any) -> None:
        self.key = key

    def __len__(self) -> int:
        return int(self.key.size)

    def __getitem__(self, item: slice) -> bytes:
        with self.key.lock:
            self.key._value_buffer.seek(item.start)
            return bytes(self.key._value_buffer.read(item.stop - item.start))


_plain_value = models.FakeKey.value


def _value(key: Any) -> Any:
    if getattr(_REQUEST, "ranged", False):
        return _RangeReader(key)
    return _plain_value.fget(key)  # type: ignore[attr-defined]


_plain_key_response = responses.S3Response.key_response


def _key_response(self: Any, request: Any, full_url: str, headers: dict[str, Any]) -> Any:
    wanted = request.headers.get("range") or ""
    _REQUEST.ranged = request.method == "GET" and wanted.startswith("bytes=") and "," not in wanted
    try:
        status, response_headers, body = _plain_key_response(self, request, full_url, headers)
    finally:
        _REQUEST.ranged = False
    if isinstance(body, _RangeReader):  # moto answered without slicing (an unusual range): whole object
        body = _plain_value.fget(body.key)  # type: ignore[attr-defined]
    return status, response_headers, body


models.FakeKey.value = property(_value, _plain_value.fset)  # type: ignore[method-assign,assignment,attr-defined]
responses.S3Response.key_response = _key_response  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
