"""The shape of a Letta database as lifeboat needs it: which column keys each table's rows.

Backups stream every table ordered by its *entity key* (then a tie-breaker), so each blob covers
a narrow key range (its zone map) and restoring one agent reads only the blobs covering it.
Agent-scoped tables are keyed by ``agent_id``; tables hanging off a shared entity are keyed by
that entity's id (an archive's passages by ``archive_id``, a folder's files by ``source_id``...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamOrder:
    key: str  # the column whose min/max form each blob's zone map
    order_by: tuple[str, ...]  # full ORDER BY, key first, for a deterministic stream


_ORDERS: dict[str, StreamOrder] = {
    # one agent's own rows (docs/LETTA.md §4)
    "agents": StreamOrder("id", ("id",)),
    "agents_tags": StreamOrder("agent_id", ("agent_id", "tag")),
    "agent_environment_variables": StreamOrder("agent_id", ("agent_id", "id")),
    "messages": StreamOrder("agent_id", ("agent_id", "sequence_id")),
    "conversations": StreamOrder("agent_id", ("agent_id", "id")),
    "conversation_messages": StreamOrder("agent_id", ("agent_id", "id")),
    "files_agents": StreamOrder("agent_id", ("agent_id", "id")),
    "runs": StreamOrder("agent_id", ("agent_id", "id")),
    "run_metrics": StreamOrder("agent_id", ("agent_id", "id")),
    "steps": StreamOrder("agent_id", ("agent_id", "id")),
    "step_metrics": StreamOrder("agent_id", ("agent_id", "id")),
    "llm_batch_items": StreamOrder("agent_id", ("agent_id", "id")),
    "archives_agents": StreamOrder("agent_id", ("agent_id", "archive_id")),
    "blocks_agents": StreamOrder("agent_id", ("agent_id", "block_id")),
    "tools_agents": StreamOrder("agent_id", ("agent_id", "tool_id")),
    "sources_agents": StreamOrder("agent_id", ("agent_id", "source_id")),
    "identities_agents": StreamOrder("agent_id", ("agent_id", "identity_id")),
    "groups_agents": StreamOrder("agent_id", ("agent_id", "group_id")),
    "provider_traces": StreamOrder("agent_id", ("agent_id", "id")),
    # rows hanging off shared entities
    "archival_passages": StreamOrder("archive_id", ("archive_id", "id")),
    "passage_tags": StreamOrder("archive_id", ("archive_id", "id")),
    "source_passages": StreamOrder("source_id", ("source_id", "id")),
    "files": StreamOrder("source_id", ("source_id", "id")),
    "file_contents": StreamOrder("file_id", ("file_id", "id")),
    "block_history": StreamOrder("block_id", ("block_id", "id")),
    "blocks_tags": StreamOrder("block_id", ("block_id", "tag")),
    "identities_blocks": StreamOrder("block_id", ("block_id", "identity_id")),
    "groups_blocks": StreamOrder("group_id", ("group_id", "block_id")),
    "blocks_conversations": StreamOrder("conversation_id", ("conversation_id", "block_id")),
}


def stream_order(table: str, columns: list[str]) -> StreamOrder | None:
    """How to order ``table``'s backup stream, or None for the generic primary-key order.

    Only orders whose columns all exist are returned, so an older or newer schema revision
    degrades to the generic order instead of failing.
    """
    order = _ORDERS.get(table)
    if order is None or not set(order.order_by) <= set(columns):
        if "id" in columns:
            return StreamOrder("id", ("id",))
        return None
    return order


AGENT_KEYED_TABLES = frozenset(t for t, o in _ORDERS.items() if o.key == "agent_id") | {"agents"}
