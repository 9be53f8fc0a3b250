"""A hung COPY or lock wait must fail the test, not the whole run."""

from __future__ import annotations

import pytest

PG_TEST_TIMEOUT_SECONDS = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/pg/" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PG_TEST_TIMEOUT_SECONDS))
