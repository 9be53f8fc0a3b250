"""A sample of the fuzzed files through the full import path, against the real deployment.

Invalid files go through a real import (no dry run) and must fail cleanly before writing;
valid ones are imported with ``dry_run`` (written in the transaction, then rolled back), which
also proves the target's constraints accept what validation let through. Afterwards every
table's content hash is unchanged.
"""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings

from lifeboat.errors import DatabaseError, LifeboatError, ValidationFailed
from lifeboat.letta.agent_file_import import Options
from lifeboat.letta.agent_file_validate import validate_bytes
from lifeboat.ops.import_af import import_agent_file
from lifeboat.sandbox.deployment import LettaDatabase

from .dbtools import table_hashes
from .fuzzing import mutated_documents
from .samples import rich_document, to_bytes

DB_EXAMPLES = 150


def _expect_valid(data: bytes) -> bool:
    try:
        validate_bytes(data)
    except ValidationFailed:
        return False
    return True


def test_fuzzed_imports_leave_the_database_untouched(letta_db: LettaDatabase) -> None:
    before = table_hashes(letta_db.admin_dsn)
    outcomes = {"imported (rolled back)": 0, "rejected": 0}

    @settings(
        max_examples=DB_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutated_documents())
    def one(data: bytes) -> None:
        valid = _expect_valid(data)
        try:
            import_agent_file(
                io.BytesIO(data), letta_db.dsn, dry_run=valid, options=Options(allow_custom_tools=True)
            )
        except LifeboatError as error:
            assert not valid or not isinstance(error, DatabaseError), (
                f"validated file failed in the database: {error}"
            )
            assert "\n" not in str(error)
            outcomes["rejected"] += 1
        else:
            assert valid
            outcomes["imported (rolled back)"] += 1

    one()
    # the base document itself, for real, through the same path: then the hashes must change
    assert table_hashes(letta_db.admin_dsn) == before, "a failed or dry-run import changed the database"
    assert all(outcomes.values()), outcomes
    import_agent_file(
        io.BytesIO(to_bytes(rich_document())), letta_db.dsn, options=Options(allow_custom_tools=True)
    )
    assert table_hashes(letta_db.admin_dsn) != before
