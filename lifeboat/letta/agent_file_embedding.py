"""Agent-file embeddings: base64 of little-endian float32 values (Letta's encoding), checked and converted."""

from __future__ import annotations

import base64
import math

from lifeboat.letta.agent_file import PassageEntry


def embedding_problem(passage: PassageEntry) -> str | None:
    """Whether a passage's base64 embedding decodes to at most 4096 float32 values."""
    if passage.embedding is None:
        return None
    try:
        raw = base64.b64decode(passage.embedding, validate=True)
    except ValueError:
        return f"passage {passage.id[:40]}: embedding is not base64"
    if len(raw) % 4 or len(raw) // 4 > 4096:
        return f"passage {passage.id[:40]}: embedding must hold at most 4096 float32 values"
    values = decode_embedding(passage.embedding)
    if not all(math.isfinite(v) for v in values):
        return f"passage {passage.id[:40]}: embedding holds NaN or infinite values"
    return None


def decode_embedding(encoded: str) -> list[float]:
    import struct

    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def encode_embedding(values: list[float]) -> str:
    import struct

    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
