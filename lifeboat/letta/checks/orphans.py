"""Orphans Letta leaves behind by design (docs/LETTA.md §11): information, not corruption.

Deleting an agent keeps its steps (no FK on steps.agent_id) and provider traces (plain strings),
and leaves blocks no other agent uses; archives outlive their agents. Worth knowing for size and
privacy, never a reason to fail a verify.
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings

_BLOCK_USERS = ("blocks_agents", "groups_blocks", "identities_blocks", "blocks_conversations")


@check(
    "orphans",
    "Rows whose owner is gone (expected after deletions)",
    needs=("agents",),
    codes=("orphans.steps", "orphans.provider_traces", "orphans.blocks", "orphans.archives"),
)
def check_orphans(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.has("steps", "agent_id"):
        yield from row_findings(
            ctx,
            Severity.INFO,
            "orphans.steps",
            "steps",
            """
            SELECT s.id, s.agent_id AS related FROM steps s
            WHERE s.agent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = s.agent_id)
            """,
            "{count} step(s) belong to deleted agents (Letta keeps steps when an agent is deleted)",
            "nothing to do; delete them if their telemetry is no longer wanted",
        )
    if ctx.has("provider_traces", "agent_id"):
        yield from row_findings(
            ctx,
            Severity.INFO,
            "orphans.provider_traces",
            "provider_traces",
            """
            SELECT t.id, t.agent_id AS related FROM provider_traces t
            WHERE t.agent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = t.agent_id)
            """,
            "{count} provider trace(s) belong to deleted agents (raw LLM requests: they may hold personal data)",
            "delete them if the agents were deleted for privacy reasons",
        )
    if ctx.has("block", "id") and all(table in ctx.columns for table in _BLOCK_USERS):
        unused = " AND ".join(
            f"NOT EXISTS (SELECT 1 FROM {t} u WHERE u.block_id = b.id)" for t in _BLOCK_USERS
        )
        template = " AND NOT b.is_template" if ctx.has("block", "is_template") else ""
        yield from row_findings(
            ctx,
            Severity.INFO,
            "orphans.blocks",
            "block",
            f"SELECT b.id, b.label AS related FROM block b WHERE {unused}{template}",
            "{count} block(s) are attached to no agent, group, identity or conversation",
            "nothing to do; they are kept by Letta when agents or conversations are deleted",
        )
    if ctx.has("archives", "id") and "archives_agents" in ctx.columns:
        yield from row_findings(
            ctx,
            Severity.INFO,
            "orphans.archives",
            "archives",
            """
            SELECT ar.id, ar.name AS related FROM archives ar
            WHERE NOT EXISTS (SELECT 1 FROM archives_agents aa WHERE aa.archive_id = ar.id)
            """,
            "{count} archive(s) are attached to no agent",
            "nothing to do; attach them to an agent to search them again",
        )
