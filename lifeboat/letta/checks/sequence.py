"""The global message order: ``messages.sequence_id`` from the ``message_seq_id`` sequence (§0, §8).

Letta lists messages by sequence_id. A table-by-table restore that did not ``setval`` the
sequence hands out ids that already exist: the next insert fails on the unique constraint (or,
without it, new messages sort before old ones).
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, finding, row_findings

SEQUENCE = "message_seq_id"

_DEFAULT_SQL = """
SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = 'messages'::regclass AND a.attname = 'sequence_id'
"""

_UNIQUE_INDEX_SQL = """
SELECT EXISTS (
  SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid
  WHERE i.indrelid = 'messages'::regclass AND i.indisunique AND i.indisvalid AND i.indnatts = 1
    AND a.attnum = i.indkey[0] AND a.attname = 'sequence_id')
"""


@check(
    "sequence",
    "message_seq_id exists, feeds messages.sequence_id and is ahead of every stored value",
    needs=("messages",),
    codes=("sequence.missing", "sequence.behind", "sequence.duplicate"),
)
def check_sequence(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.has("messages", "sequence_id"):
        return
    if ctx.scalar("SELECT to_regclass(%s)", (SEQUENCE,)) is None:
        yield finding(
            Severity.ERROR,
            "sequence.missing",
            "messages",
            f"sequence {SEQUENCE} does not exist: every message insert fails (sequence_id is NOT NULL)",
            f"CREATE SEQUENCE {SEQUENCE}; ALTER TABLE messages ALTER sequence_id SET DEFAULT nextval('{SEQUENCE}'); "
            "then lifeboat reconcile --apply to move it past the stored values",
        )
        return
    default = ctx.scalar(_DEFAULT_SQL) or ""
    if SEQUENCE not in default or "nextval" not in default:
        yield finding(
            Severity.ERROR,
            "sequence.missing",
            "messages",
            f"messages.sequence_id has default {default or 'NULL'!r}, not nextval('{SEQUENCE}'): message inserts fail",
            f"ALTER TABLE messages ALTER sequence_id SET DEFAULT nextval('{SEQUENCE}')",
        )
    yield from _behind(ctx)
    if not ctx.scalar(_UNIQUE_INDEX_SQL):
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "sequence.duplicate",
            "messages",
            """
            SELECT m.id, m.sequence_id::text AS related FROM messages m
            JOIN (SELECT sequence_id FROM messages GROUP BY sequence_id HAVING count(*) > 1) d USING (sequence_id)
            """,
            "{count} message(s) share a sequence_id (and the unique constraint is missing): their order is undefined",
            "give the later duplicates fresh nextval('message_seq_id') values, then re-create the constraint",
        )


def next_sequence_value(ctx: CheckContext) -> int:
    last_value, is_called = ctx.rows(f"SELECT last_value, is_called FROM {SEQUENCE}")[0]
    return int(last_value) + 1 if is_called else int(last_value)


def _behind(ctx: CheckContext) -> Iterator[Finding]:
    highest = ctx.scalar("SELECT max(sequence_id) FROM messages")
    if highest is None:
        return
    upcoming = next_sequence_value(ctx)
    if upcoming <= highest:
        yield finding(
            Severity.ERROR,
            "sequence.behind",
            "messages",
            f"{SEQUENCE} would hand out {upcoming} next but messages already reach sequence_id {highest}: "
            "new messages collide with (or sort before) stored ones",
            f"lifeboat reconcile --apply (setval('{SEQUENCE}', {highest}))",
        )
