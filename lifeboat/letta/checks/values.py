"""Stored values Letta must be able to parse: enum-like columns, block sizes, cross-row agreement.

Letta keeps statuses, roles, types and stop reasons in plain ``varchar`` columns and turns them
into Python enums when it loads a row (:mod:`lifeboat.letta.vocabularies`): a value outside the
vocabulary makes the row unloadable. A memory block longer than its ``limit`` loads, but every
memory edit the agent attempts on it is refused until someone shortens it.
"""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings
from lifeboat.letta.vocabularies import VOCABULARIES


@check(
    "values",
    "Enum-like columns hold values of Letta's vocabularies",
    codes=tuple(sorted({v.code for v in VOCABULARIES})),
)
def check_values(ctx: CheckContext) -> Iterator[Finding]:
    for vocabulary in VOCABULARIES:
        if not ctx.has(vocabulary.table, vocabulary.column):
            continue
        column = sql.Identifier(vocabulary.column)
        query = sql.SQL(
            "SELECT {label} AS id, t.{column}::text AS related FROM {table} AS t "
            "WHERE t.{column} IS NOT NULL AND t.{column}::text <> ALL(%s)"
        ).format(
            label=ctx.row_label(vocabulary.table, "t"), column=column, table=sql.Identifier(vocabulary.table)
        )
        yield from row_findings(
            ctx,
            Severity.ERROR,
            vocabulary.code,
            vocabulary.table,
            query,
            f"{{count}} {vocabulary.table} row(s) hold a {vocabulary.column} Letta does not know "
            f"(related = the values; known: {', '.join(vocabulary.values)}): loading them fails",
            f"UPDATE {vocabulary.table} SET {vocabulary.column} to one of Letta's values (or restore the rows)",
            params=(list(vocabulary.values),),
        )


@check(
    "blocks",
    "Memory blocks fit their limit; history entries belong to their block",
    needs=("block",),
    codes=("block.over_limit", "block.history_foreign", "blocks_conversations.label_mismatch"),
)
def check_blocks(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.has("block", "value", "limit"):
        yield from row_findings(
            ctx,
            Severity.WARNING,
            "block.over_limit",
            "block",
            "SELECT b.id, concat(char_length(b.value), ' chars, limit ', b.\"limit\") AS related FROM block b "
            'WHERE char_length(b.value) > b."limit"',
            "{count} memory block(s) hold more characters than their limit: every memory edit the agent "
            "attempts on them is refused",
            "shorten the value, or raise the block's limit (PATCH /v1/blocks/{id})",
        )
    if ctx.has("block", "current_history_entry_id") and ctx.has("block_history", "block_id"):
        yield from row_findings(
            ctx,
            Severity.ERROR,
            "block.history_foreign",
            "block",
            "SELECT b.id, h.id AS related FROM block b JOIN block_history h ON h.id = b.current_history_entry_id "
            "WHERE h.block_id <> b.id",
            "{count} block(s) point at another block's history entry: undo/redo would load foreign content",
            "UPDATE block SET current_history_entry_id = NULL for these blocks",
        )
    if ctx.has("blocks_conversations", "conversation_id", "block_id", "block_label"):
        # no foreign key carries the label here (blocks_agents has one, with ON UPDATE CASCADE)
        yield from row_findings(
            ctx,
            Severity.WARNING,
            "blocks_conversations.label_mismatch",
            "blocks_conversations",
            "SELECT bc.conversation_id || '/' || bc.block_id AS id, b.label AS related "
            "FROM blocks_conversations bc JOIN block b ON b.id = bc.block_id WHERE bc.block_label <> b.label",
            "{count} conversation block(s) are filed under another label than the block's own: the "
            "conversation looks its isolated copy up by label and misses it",
            "UPDATE blocks_conversations SET block_label = block.label for these rows",
        )


@check(
    "message_owners",
    "A message's conversation belongs to the message's agent",
    needs=("messages", "conversations"),
    codes=("messages.conversation_agent",),
)
def check_message_owners(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "messages.conversation_agent",
        "messages",
        "SELECT m.id, c.id AS related FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.agent_id <> m.agent_id",
        "{count} message(s) sit in a conversation of another agent: that conversation shows foreign history",
        "move the messages back (UPDATE messages SET conversation_id) or restore the agent from a snapshot",
    )


@check(
    "metrics",
    "Run and step metrics name the agent of their run or step",
    needs=("runs",),
    codes=("metrics.agent_mismatch",),
)
def check_metrics(ctx: CheckContext) -> Iterator[Finding]:
    for metrics, parent in (("run_metrics", "runs"), ("step_metrics", "steps")):
        if not (ctx.has(metrics, "id", "agent_id") and ctx.has(parent, "id", "agent_id")):
            continue
        yield from row_findings(
            ctx,
            Severity.WARNING,
            "metrics.agent_mismatch",
            metrics,
            sql.SQL(
                "SELECT m.id, m.agent_id AS related FROM {metrics} m JOIN {parent} p ON p.id = m.id "
                "WHERE m.agent_id IS DISTINCT FROM p.agent_id"
            ).format(metrics=sql.Identifier(metrics), parent=sql.Identifier(parent)),
            f"{{count}} {metrics} row(s) name another agent than their {parent.rstrip('s')} "
            "(Letta writes both with the same agent): per-agent usage is misattributed",
            f"UPDATE {metrics} SET agent_id = {parent}.agent_id for these rows",
        )
