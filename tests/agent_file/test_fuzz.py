"""Fuzzing: ≥10,000 malformed or hostile agent files give clean, one-line errors, never a traceback.

In-process (no database): every mutated file either validates — and then plans without error —
or is refused with :class:`ValidationFailed`. The database-backed sample lives in
test_fuzz_db.py.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings

from lifeboat.errors import ValidationFailed
from lifeboat.letta.agent_file_import import Target, plan_import
from lifeboat.letta.agent_file_validate import validate_bytes

from .fuzzing import mutated_documents

TARGET_ORG = "org-00000000-0000-4000-8000-000000000000"
FUZZ_EXAMPLES = 10_000


def check_one(data: bytes) -> str:
    """Validate and (when valid) plan one file; only ValidationFailed may escape, one line long."""
    try:
        doc = validate_bytes(data)
    except ValidationFailed as error:
        assert str(error) and "\n" not in str(error)
        assert error.problems and all(p and "\n" not in p for p in error.problems)
        return "rejected"
    plan_import(doc, Target(TARGET_ORG, None))
    return "accepted"


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_documents())
def test_fuzz_validation_in_process(data: bytes) -> None:
    event(check_one(data))  # --hypothesis-show-statistics shows the accepted/rejected split
