"""References Letta enforces only in code (docs/LETTA.md §4, §11), checked set-based.

The database declares no constraint for these: ``agents.message_ids`` is a JSON list, groups keep
their members both in ``groups.agent_ids`` and ``groups_agents``, archival tags live both in
``archival_passages.tags`` and ``passage_tags``... A crash, a partial restore or a hand edit can
make the copies disagree; Letta then fails to load an agent or silently shows the wrong state.
"""

from __future__ import annotations

from collections.abc import Iterator

from lifeboat.letta.checks.base import CheckContext, Finding, Severity, check, row_findings

# One row per (agent, position) of agents.message_ids; agents whose message_ids is not an array are
# reported by message_ids.not_array and skipped here.
_ENTRIES = """
WITH entries AS (
  SELECT a.id AS agent_id, e.value AS message_id, e.ord
  FROM agents a, json_array_elements_text(a.message_ids) WITH ORDINALITY AS e(value, ord)
  WHERE json_typeof(a.message_ids) = 'array'
)
"""


@check(
    "message_ids",
    "agents.message_ids resolve to the agent's own messages, system message first",
    needs=("agents", "messages"),
    codes=(
        "message_ids.not_array",
        "message_ids.empty",
        "message_ids.dangling",
        "message_ids.foreign",
        "message_ids.duplicate",
        "message_ids.system_first",
    ),
)
def check_message_ids(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "message_ids.not_array",
        "agents",
        """
        SELECT a.id, json_typeof(a.message_ids) AS related FROM agents a
        WHERE json_typeof(a.message_ids) NOT IN ('array', 'null')
           OR (json_typeof(a.message_ids) = 'array' AND EXISTS (
                 SELECT 1 FROM json_array_elements(a.message_ids) e WHERE json_typeof(e) <> 'string'))
        """,
        "{count} agent(s) have a message_ids value that is not a list of message ids: Letta cannot load them",
        "restore the agent from a backup (the in-context list cannot be guessed from its history)",
    )
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "message_ids.empty",
        "agents",
        """
        SELECT a.id, NULL::text AS related FROM agents a
        WHERE a.message_ids IS NULL OR json_typeof(a.message_ids) = 'null'
           OR (json_typeof(a.message_ids) = 'array' AND json_array_length(a.message_ids) = 0)
        """,
        "{count} agent(s) have no in-context messages (not even the system message)",
        "send the agent a message or reset its messages through the API to rebuild the context",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "message_ids.dangling",
        "agents",
        _ENTRIES
        + """
        SELECT e.agent_id AS id, e.message_id AS related FROM entries e
        WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.message_id)
        """,
        "{count} agent(s) list in-context message ids that do not exist: loading the agent fails",
        "lifeboat reconcile --apply drops the dangling entries (order kept, system message first)",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "message_ids.foreign",
        "agents",
        _ENTRIES
        + """
        SELECT e.agent_id AS id, e.message_id AS related FROM entries e JOIN messages m ON m.id = e.message_id
        WHERE m.agent_id IS DISTINCT FROM e.agent_id
        """
        # messages.conversation_id exists from Letta 0.16.1 on.
        + (" OR m.conversation_id IS NOT NULL" if ctx.has("messages", "conversation_id") else ""),
        "{count} agent(s) list in-context messages of another agent or of a named conversation",
        "lifeboat reconcile --apply drops those entries from the default conversation's context",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "message_ids.duplicate",
        "agents",
        _ENTRIES
        + """
        SELECT e.agent_id AS id, e.message_id AS related FROM entries e
        GROUP BY e.agent_id, e.message_id HAVING count(*) > 1
        """,
        "{count} agent(s) list the same message twice in their context",
        "lifeboat reconcile --apply keeps the first occurrence",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "message_ids.system_first",
        "agents",
        _ENTRIES
        + """
        SELECT e.agent_id AS id, e.message_id AS related FROM entries e JOIN messages m ON m.id = e.message_id
        WHERE e.ord = 1 AND m.role IS DISTINCT FROM 'system'
        """,
        "{count} agent(s) do not start their context with a system message: Letta rebuilds the system "
        "prompt in place at element 0 and would overwrite a conversation message",
        "lifeboat reconcile --apply moves the agent's system message to the front",
    )


@check(
    "conversations",
    "Named conversations reference their agent's messages",
    needs=("conversation_messages", "messages"),
    codes=("conversation_messages.foreign", "conversation_messages.position"),
)
def check_conversations(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "conversation_messages.foreign",
        "conversation_messages",
        """
        SELECT cm.id, m.id AS related FROM conversation_messages cm JOIN messages m ON m.id = cm.message_id
        WHERE m.agent_id IS DISTINCT FROM cm.agent_id
        UNION ALL
        SELECT cm.id, c.id FROM conversation_messages cm JOIN conversations c ON c.id = cm.conversation_id
        WHERE c.agent_id IS DISTINCT FROM cm.agent_id
        """,
        "{count} conversation_messages row(s) tie a conversation to another agent's messages",
        "delete the rows (they cannot have been written by Letta) or restore the conversation",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "conversation_messages.position",
        "conversation_messages",
        """
        SELECT cm.id, cm.position::text AS related FROM conversation_messages cm
        JOIN (SELECT agent_id, conversation_id, position FROM conversation_messages
              WHERE in_context AND NOT is_deleted
              GROUP BY agent_id, conversation_id, position HAVING count(*) > 1) dup
          ON dup.agent_id = cm.agent_id AND dup.conversation_id IS NOT DISTINCT FROM cm.conversation_id
         AND dup.position = cm.position
        WHERE cm.in_context AND NOT cm.is_deleted
        """,
        "{count} in-context conversation_messages row(s) share a position: the context order is ambiguous",
        "renumber the positions of the conversation's in-context rows in message order",
    )


@check(
    "groups",
    "groups.agent_ids matches groups_agents; sleeptime groups are well formed",
    needs=("groups", "groups_agents", "agents"),
    codes=("groups.agent_ids_drift", "groups.sleeptime_shape"),
)
def check_groups(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "groups.agent_ids_drift",
        "groups",
        """
        WITH listed AS (
          SELECT g.id AS group_id, e.value AS agent_id FROM groups g, json_array_elements_text(g.agent_ids) e
          WHERE json_typeof(g.agent_ids) = 'array'
        )
        SELECT coalesce(l.group_id, j.group_id) AS id, coalesce(l.agent_id, j.agent_id) AS related
        FROM listed l FULL JOIN groups_agents j ON j.group_id = l.group_id AND j.agent_id = l.agent_id
        WHERE l.group_id IS NULL OR j.group_id IS NULL
        UNION ALL
        SELECT g.id, json_typeof(g.agent_ids) FROM groups g
        WHERE g.agent_ids IS NOT NULL AND json_typeof(g.agent_ids) <> 'array'
        """,
        "{count} group(s) list members in groups.agent_ids that differ from their groups_agents rows",
        "lifeboat reconcile --apply makes both hold the existing members (JSON order kept)",
    )
    if not ctx.has("groups", "manager_type", "manager_agent_id") or not ctx.has("agents", "agent_type"):
        return
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "groups.sleeptime_shape",
        "groups",
        """
        SELECT g.id, g.manager_agent_id AS related FROM groups g
        LEFT JOIN agents manager ON manager.id = g.manager_agent_id
        WHERE g.manager_type IN ('sleeptime', 'voice_sleeptime')
          AND (manager.id IS NULL OR manager.enable_sleeptime IS NOT TRUE
               OR (SELECT count(*) FROM groups_agents ga JOIN agents member ON member.id = ga.agent_id
                   WHERE ga.group_id = g.id
                     AND member.agent_type IN ('sleeptime_agent', 'voice_sleeptime_agent')) <> 1)
        """,
        "{count} sleeptime group(s) lack a manager with enable_sleeptime or exactly one sleeptime member",
        "re-enable sleeptime on the manager agent through the API (it recreates the group)",
    )


@check(
    "blocks_agents",
    "Block attachments: label copies match, one label per agent",
    needs=("blocks_agents", "block"),
    codes=("blocks_agents.label_mismatch", "blocks_agents.duplicate_label"),
)
def check_block_attachments(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "blocks_agents.label_mismatch",
        "blocks_agents",
        """
        SELECT ba.agent_id || '/' || ba.block_id AS id, b.label AS related
        FROM blocks_agents ba JOIN block b ON b.id = ba.block_id
        WHERE ba.block_label IS DISTINCT FROM b.label
        """,
        "{count} block attachment(s) carry a label that differs from the block's own label "
        "(the composite FK with ON UPDATE CASCADE normally prevents this)",
        "UPDATE blocks_agents SET block_label = block.label for these rows, then re-create the FK",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "blocks_agents.duplicate_label",
        "blocks_agents",
        """
        SELECT ba.agent_id || '/' || ba.block_id AS id, ba.block_label AS related FROM blocks_agents ba
        JOIN (SELECT agent_id, block_label FROM blocks_agents GROUP BY 1, 2 HAVING count(*) > 1) dup
          USING (agent_id, block_label)
        """,
        "{count} block attachment(s) give an agent two blocks with the same label",
        "detach one of the blocks (memory is addressed by label)",
    )


@check(
    "archives",
    "Archives: one per agent; passage_tags mirrors archival_passages.tags",
    needs=("archives_agents", "archival_passages", "passage_tags"),
    codes=("archives_agents.multiple", "passage_tags.drift", "passage_tags.archive_mismatch"),
)
def check_archives(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "archives_agents.multiple",
        "archives_agents",
        """
        SELECT agent_id AS id, archive_id AS related FROM archives_agents
        WHERE agent_id IN (SELECT agent_id FROM archives_agents GROUP BY agent_id HAVING count(*) > 1)
        """,
        "{count} agent(s) are attached to more than one archive (Letta allows one)",
        "detach all but the agent's owned archive",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "passage_tags.drift",
        "archival_passages",
        """
        WITH expanded AS (
          SELECT p.id AS passage_id, t.value AS tag FROM archival_passages p, json_array_elements_text(p.tags) t
          WHERE json_typeof(p.tags) = 'array'
        ),
        junction AS (SELECT passage_id, tag FROM passage_tags WHERE NOT is_deleted)
        SELECT coalesce(e.passage_id, j.passage_id) AS id, coalesce(e.tag, j.tag) AS related
        FROM expanded e FULL JOIN junction j ON j.passage_id = e.passage_id AND j.tag = e.tag
        WHERE e.passage_id IS NULL OR j.passage_id IS NULL
        """,
        "{count} archival passage(s) have tags that differ between archival_passages.tags and passage_tags: "
        "tag filters and tag listings disagree",
        "rewrite passage_tags from archival_passages.tags for these passages",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "passage_tags.archive_mismatch",
        "passage_tags",
        """
        SELECT t.id, p.archive_id AS related FROM passage_tags t JOIN archival_passages p ON p.id = t.passage_id
        WHERE t.archive_id IS DISTINCT FROM p.archive_id
        """,
        "{count} passage_tags row(s) name another archive than their passage",
        "set passage_tags.archive_id to the passage's archive_id",
    )


@check(
    "files_agents",
    "Per-agent file rows: folder, name and attachment agree",
    needs=("files_agents", "files"),
    codes=("files_agents.source_mismatch", "files_agents.duplicate_name", "files_agents.unattached_folder"),
)
def check_files_agents(ctx: CheckContext) -> Iterator[Finding]:
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "files_agents.source_mismatch",
        "files_agents",
        """
        SELECT fa.id, f.source_id AS related FROM files_agents fa JOIN files f ON f.id = fa.file_id
        WHERE fa.source_id IS DISTINCT FROM f.source_id
        """,
        "{count} files_agents row(s) name another folder than their file's",
        "set files_agents.source_id to files.source_id",
    )
    yield from row_findings(
        ctx,
        Severity.ERROR,
        "files_agents.duplicate_name",
        "files_agents",
        """
        SELECT fa.id, fa.file_name AS related FROM files_agents fa
        JOIN (SELECT agent_id, file_name FROM files_agents WHERE NOT is_deleted GROUP BY 1, 2 HAVING count(*) > 1) d
          USING (agent_id, file_name)
        WHERE NOT fa.is_deleted
        """,
        "{count} live files_agents row(s) give an agent two files with the same name (file blocks are keyed by name)",
        "detach one of the files",
    )
    if "sources_agents" not in ctx.columns:
        return
    yield from row_findings(
        ctx,
        Severity.WARNING,
        "files_agents.unattached_folder",
        "files_agents",
        """
        SELECT fa.id, fa.source_id AS related FROM files_agents fa
        WHERE NOT fa.is_deleted
          AND NOT EXISTS (SELECT 1 FROM sources_agents sa WHERE sa.agent_id = fa.agent_id AND sa.source_id = fa.source_id)
        """,
        "{count} live files_agents row(s) belong to a folder that is not attached to the agent",
        "re-attach the folder, or detach its files (soft delete) as Letta's detach does",
    )
