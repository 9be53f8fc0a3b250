"""verify's speed budget: a 2 GB Letta database in under 60 s (opt-in: building it takes minutes).

Run with ``LIFEBOAT_VERIFY_BENCH_GB=2 .venv/bin/python -m pytest tests/verify/test_speed.py -s``.
"""

from __future__ import annotations

import os
import time

import pytest

from lifeboat.ops.verify import verify_database
from lifeboat.sandbox.deployment import LettaDatabase
from tests.verify.inflate import inflate

TARGET_GB = float(os.environ.get("LIFEBOAT_VERIFY_BENCH_GB", "0"))
BUDGET_SECONDS_PER_GB = 30


@pytest.mark.slow
@pytest.mark.skipif(not TARGET_GB, reason="set LIFEBOAT_VERIFY_BENCH_GB to grow a database and time verify")
def test_verify_speed_budget(letta_db: LettaDatabase) -> None:
    size = inflate(letta_db.admin_dsn, int(TARGET_GB * 1e9))
    started = time.perf_counter()
    report = verify_database(letta_db.dsn)
    seconds = time.perf_counter() - started
    slowest = sorted(report.checks, key=lambda c: -c.seconds)[:4]
    print(
        f"\nverify of {size / 1e9:.2f} GB: {seconds:.1f} s; slowest: {[(c.name, c.seconds) for c in slowest]}"
    )
    assert report.ok, [f.model_dump() for f in report.errors()]
    assert seconds < BUDGET_SECONDS_PER_GB * size / 1e9
