"""Pure pieces of verify/reconcile: no Letta needed (a plain cluster at most)."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from lifeboat.errors import UsageError
from lifeboat.letta import ids, secrets
from lifeboat.letta.agent_config import file_window_defaults
from lifeboat.letta.checks import CHECK_ORDER, REGISTRY, all_codes
from lifeboat.letta.repairs import clean_message_ids, merge_group_members
from lifeboat.ops.reconcile import parse_duration
from lifeboat.sandbox.postgres import Cluster


def test_every_check_is_ordered_and_documented() -> None:
    assert list(REGISTRY) == list(CHECK_ORDER)
    doc = (Path(__file__).parents[2] / "docs" / "VERIFY.md").read_text()
    undocumented = [code for code in all_codes() if f"`{code}`" not in doc]
    assert undocumented == []


@pytest.mark.parametrize(
    ("entries", "system", "expected"),
    [
        # dangling entry dropped, order kept
        ([("s", True, "system", 1), ("x", False, None, 1), ("u", True, "user", 1)], "s", ["s", "u"]),
        # duplicate dropped (first occurrence kept)
        ([("s", True, "system", 1), ("u", True, "user", 1), ("u", True, "user", 2)], "s", ["s", "u"]),
        # system message found later in the list is moved to the front
        (
            [("u", True, "user", 1), ("s", True, "system", 1), ("a", True, "assistant", 1)],
            "s",
            ["s", "u", "a"],
        ),
        # system message missing from the list: the agent's latest one is put first
        ([("x", False, None, 1), ("u", True, "user", 1)], "s2", ["s2", "u"]),
        # nothing to put first
        ([("u", True, "user", 1)], None, ["u"]),
    ],
)
def test_clean_message_ids(
    entries: list[tuple[str, bool, str | None, int]], system: str | None, expected: list[str]
) -> None:
    assert clean_message_ids(entries, system) == expected


def test_merge_group_members_keeps_json_order_drops_missing_appends_junction_only() -> None:
    listed = [("agent-b", True), ("agent-gone", False), ("agent-a", True), ("agent-b", True)]
    assert merge_group_members(listed, ["agent-a", "agent-c"]) == ["agent-b", "agent-a", "agent-c"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("0", 0), ("1.5m", 90)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(UsageError):
        parse_duration("five minutes")


def test_secrets_roundtrip_and_letta_heuristic() -> None:
    token = secrets.encrypt("sk-live-123", "master")
    assert secrets.looks_encrypted(token)
    assert secrets.decrypt(token, "master") == "sk-live-123"
    with pytest.raises(secrets.DecryptionError):
        secrets.decrypt(token, "another key")
    raw = base64.b64decode(token)
    assert len(raw) == secrets.SALT_SIZE + secrets.IV_SIZE + len("sk-live-123") + secrets.TAG_SIZE
    assert not secrets.looks_encrypted("sk-" + "A" * 80)  # a credential, however long
    assert not secrets.looks_encrypted("short")


def test_file_window_defaults_follow_letta_ladder() -> None:
    assert file_window_defaults(None) == (5, 50_000)
    assert file_window_defaults(8_000) == (3, 5_000)
    assert file_window_defaults(32_000) == (5, 15_000)
    assert file_window_defaults(128_000) == (10, 25_000)
    assert file_window_defaults(200_000) == (10, 40_000)
    assert file_window_defaults(1_000_000) == (15, 40_000)


SAMPLE_IDS = [
    "agent-2f1c7b9e-0d4a-4c1e-9b7a-3e5d6f7a8b9c",  # strict
    "agent-2F1C7B9E-0d4a-4c1e-9b7a-3e5d6f7a8b9c",  # loose only (upper case)
    "agent-2f1c7b9e-0d4a-1c1e-9b7a-3e5d6f7a8b9c",  # loose only (uuid version 1)
    "agent-2f1c7b9e",  # loose only (short)
    "agent-2f1c7b9e-0d4a-4c1e-7b7a-3e5d6f7a8b9c",  # loose only (variant 7)
    "agent-2f1c7b9e-0d4a-4c1e-9b7a-3e5d6f7a8b9c0",  # loose only (one digit too many)
    "agent-2f1c7b9e00d4a-4c1e-9b7a-3e5d6f7a8b9c",  # loose only (dash moved)
    "agent-2f1c7",  # malformed (fewer than 8 hex digits)
    "agent-",  # malformed
    "agent-xyz",  # malformed
    "block-2f1c7b9e-0d4a-4c1e-9b7a-3e5d6f7a8b9c",  # wrong prefix
    "org-00000000-0000-4000-8000-000000000000",  # Letta's fixed default org id (other table)
]


def test_pg_predicate_agrees_with_python_patterns(pg_cluster: Cluster) -> None:
    with psycopg.connect(pg_cluster.dsn()) as conn:
        for value in SAMPLE_IDS:
            for strict in (False, True):
                predicate = ids.pg_predicate("agent", "v", strict=strict)
                in_pg = conn.execute(f"SELECT {predicate} FROM (SELECT %s::text AS v) x", (value,)).fetchone()
                assert in_pg is not None
                assert in_pg[0] == ids.is_valid("agents", value, strict=strict), (value, strict)
    assert ids.is_valid("organizations", SAMPLE_IDS[-1], strict=True)


def test_secret_scheme_matches_letta_crypto_utils(monkeypatch: pytest.MonkeyPatch) -> None:
    """Letta's own CryptoUtils (its source file from the cached Letta venv) reads ours, and we read its.

    The file is executed here with a stub ``letta.settings`` (importing the real package takes
    half a minute); it only needs ``cryptography``, which lifeboat has too.
    """
    import importlib.util
    import sys
    import types

    from lifeboat.sandbox.letta_env import ensure_letta_env

    [source] = ensure_letta_env().root.glob("venv/lib/python3*/site-packages/letta/helpers/crypto_utils.py")
    stub = types.ModuleType("letta.settings")
    stub.settings = types.SimpleNamespace(encryption_key=None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "letta", types.ModuleType("letta"))
    monkeypatch.setitem(sys.modules, "letta.settings", stub)
    spec = importlib.util.spec_from_file_location("letta_crypto_utils", source)
    assert spec is not None and spec.loader is not None
    letta_crypto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(letta_crypto)
    crypto = letta_crypto.CryptoUtils

    assert crypto.decrypt(secrets.encrypt("from-lifeboat", "shared-key"), "shared-key") == "from-lifeboat"
    assert secrets.decrypt(crypto.encrypt("from-letta", "shared-key"), "shared-key") == "from-letta"
    for value in (
        "sk-" + "A" * 80,
        "short",
        secrets.encrypt("x", "k"),
        "Bearer abcdefghijklmnopqrstuvwxyz0123456789abcdefghijk",
    ):
        assert secrets.looks_encrypted(value) == crypto.is_encrypted(value), value
