"""Errors raised in a migration's worker processes reach the parent with their message and exit code."""

from __future__ import annotations

import pickle

from lifeboat.errors import CorruptBlob, UsageError
from lifeboat.ops.migrate import _picklable


def test_an_error_that_cannot_be_unpickled_keeps_its_message_and_exit_code() -> None:
    error = _picklable(CorruptBlob("abc123", "bad tag"))
    crossed = pickle.loads(pickle.dumps(error))
    assert str(crossed) == "blob abc123 is damaged: bad tag"
    assert crossed.exit_code == CorruptBlob.exit_code


def test_a_picklable_error_crosses_as_itself() -> None:
    error = UsageError("no agent matches the selection")
    assert _picklable(error) is error
