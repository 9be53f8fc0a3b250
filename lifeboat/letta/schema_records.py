"""Recorded schemas of Letta release heads, looked up by alembic revision.

Each ``schema_<revision>.py`` module is generated from a database migrated by *that release's own*
migrations (``python -m lifeboat.sandbox.release_schema schemas``) and holds ``SHAPE``: tables,
column types, foreign keys and sequences. backup, verify, diff and agent restore compare a
database with the record of its own revision, not with 0.16.8's.
"""

from __future__ import annotations

import importlib
from functools import cache

from lifeboat.letta import revisions
from lifeboat.letta.schema_shape import SchemaShape

#: Revisions with a committed record: 0.11.7, 0.14.0 (= 0.15.x), 0.16.0, 0.16.7–0.16.8.
RECORDED: tuple[str, ...] = ("ddb69be34a72", "b1c2d3e4f5a6", "d0880aae6cee", "1c28e167b74f")


@cache
def schema_record(revision: str | None) -> SchemaShape | None:
    """The recorded shape of ``revision``, or None when lifeboat has no record of it."""
    if revision not in RECORDED:
        return None
    module = importlib.import_module(f"lifeboat.letta.schema_{revision}")
    shape: SchemaShape = module.SHAPE
    return shape


def record_for_release(version: str) -> SchemaShape | None:
    """The recorded shape of a release's head (``0.15.1`` → 0.14.0's record)."""
    for release in revisions.RELEASES:
        if version in revisions.releases_for(release.head):
            return schema_record(release.head)
    return None


def recorded_releases() -> dict[str, str]:
    """``{revision: release label}`` of every record."""
    return {revision: revisions.release_label(revision) for revision in RECORDED}
