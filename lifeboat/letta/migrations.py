"""Letta's alembic migrations: the path between two revisions and what it drops or rewrites.

The chain itself (revision, parent, title, effects of ``upgrade()``) is generated data in
:mod:`lifeboat.letta.migration_chain`, read from Letta 0.16.8's own migration files. The chain is
linear: revision N+1's ``down_revision`` is revision N.

``restore --upgrade`` and ``drill --upgrade-to`` print :func:`data_changes` before running the
migrations so the operator sees what will be lost (e.g. ``567e9fe06270``, 0.12.0, drops
``agents_runs``, ``job_messages``, ``steps.job_id`` and ``step_metrics.job_id`` without copying
them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from lifeboat.letta import revisions

#: Effect kinds that remove data, and kinds that change existing values in place.
DROPS = ("drop_table", "drop_column", "delete", "truncate")
REWRITES = ("update", "alter_type", "encryption_key")

#: What the static reading cannot say: consequences for a Letta operator, by revision.
NOTES: dict[str, str] = {
    "567e9fe06270": (
        "creates `runs` empty and drops agents_runs, job_messages, steps.job_id and step_metrics.job_id "
        "without copying them: runs made before 0.12 stay only in `jobs` (not listed as runs), and "
        "their agent/message/step links are lost"
    ),
    "54dec07619c4": "splits `passages` into source_passages and agent_passages (rows are copied first)",
    "74e860718e0d": "moves agent_passages into archives/archival_passages (rows are copied first)",
    "d14ae606614c": "deletes every tool row (tools were re-created from code at the next server start)",
    "d06594144ef3": "encrypts MCP secrets into *_enc columns only when LETTA_ENCRYPTION_KEY is set",
    "eff256d296cb": "encrypts MCP secrets into *_enc columns only when LETTA_ENCRYPTION_KEY is set",
    "8149a781ac1b": "encrypts provider/sandbox secrets into *_enc columns only when LETTA_ENCRYPTION_KEY is set",
    "45402909a46b": "CREATE INDEX CONCURRENTLY: runs outside a transaction",
    "a08c972e781b": "CREATE INDEX CONCURRENTLY: runs outside a transaction",
}


@dataclass(frozen=True)
class Migration:
    revision: str
    down_revision: str | None
    title: str
    effects: tuple[tuple[str, str], ...] = ()

    @property
    def drops(self) -> list[str]:
        return [f"{kind} {target}" for kind, target in self.effects if kind in DROPS]

    @property
    def rewrites(self) -> list[str]:
        return [f"{kind} {target}" for kind, target in self.effects if kind in REWRITES and target != "-"]

    @property
    def changes_data(self) -> bool:
        return bool(self.drops or self.rewrites or self.needs_encryption_key)

    @property
    def needs_encryption_key(self) -> bool:
        """Encrypts values only when LETTA_ENCRYPTION_KEY is set (skips silently otherwise)."""
        return any(kind == "encryption_key" for kind, _ in self.effects)

    @property
    def release(self) -> str:
        """The first Letta release whose migrations include this one (``?`` when unknown)."""
        return release_introducing(self.revision) or "?"

    def describe(self) -> str:
        """One line: revision (release) title: what it drops/rewrites [note]."""
        parts = []
        if self.drops:
            parts.append("drops " + ", ".join(t.split(" ", 1)[1] for t in self.drops))
        if self.rewrites:
            parts.append("rewrites " + ", ".join(sorted({t.split(" ", 1)[1] for t in self.rewrites})))
        text = f"{self.revision} (Letta {self.release}) {self.title}"
        if parts:
            text += ": " + "; ".join(parts)
        note = NOTES.get(self.revision)
        return f"{text} — {note}" if note else text


class MigrationPathError(ValueError):
    """No forward path between the two revisions (unknown revision, or a downgrade)."""


@cache
def chain() -> tuple[Migration, ...]:
    from lifeboat.letta.migration_chain import CHAIN

    return CHAIN


@cache
def _positions() -> dict[str, int]:
    return {m.revision: n for n, m in enumerate(chain())}


def position(revision: str | None) -> int | None:
    """Index of ``revision`` in the chain (0 = first migration), None when 0.16.8 does not know it."""
    return None if revision is None else _positions().get(revision)


def head() -> str:
    return chain()[-1].revision


def resolve_target(target: str | None) -> str:
    """``None``/``head`` → the newest revision; a release (``0.16.8``) → its head; else a revision."""
    if target in (None, "head"):
        return head()
    assert target is not None
    for release in revisions.RELEASES:
        if target in revisions.releases_for(release.head):
            return release.head
    return target


def path(from_revision: str, to_revision: str) -> list[Migration]:
    """The migrations ``alembic upgrade`` runs from ``from_revision`` to ``to_revision`` (oldest first).

    Raises :class:`MigrationPathError` for an unknown revision or when ``to`` is older than ``from``.
    """
    start, end = position(from_revision), position(to_revision)
    if start is None:
        raise MigrationPathError(
            f"alembic revision {from_revision} is not in Letta {revisions.release_label(head())}'s migrations"
        )
    if end is None:
        raise MigrationPathError(f"alembic revision {to_revision} is not in Letta's migrations")
    if end < start:
        raise MigrationPathError(
            f"{to_revision} (Letta {release_introducing(to_revision)}) is older than {from_revision} "
            f"(Letta {release_introducing(from_revision)}): downgrades are refused"
        )
    return list(chain()[start + 1 : end + 1])


def data_changes(from_revision: str, to_revision: str) -> list[Migration]:
    """The migrations on the path that drop or rewrite existing data."""
    return [m for m in path(from_revision, to_revision) if m.changes_data]


@cache
def release_introducing(revision: str) -> str | None:
    """The first release whose head is at or after ``revision`` in the chain."""
    where = position(revision)
    if where is None:
        return None
    for release in revisions.RELEASES:
        head_position = position(release.head)
        if head_position is not None and head_position >= where:
            return release.version
    return None
