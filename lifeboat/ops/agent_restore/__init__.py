"""Agent-level restore: bring some agents back from a snapshot into a live Letta database.

1. **Read** (:mod:`.source`) the agents' subgraph (:mod:`lifeboat.letta.subgraph`) from the
   snapshot, fetching only the blobs whose zone maps may hold the needed keys (bytes read are
   counted and reported).
2. **Gather** (:mod:`.facts`), inside the apply transaction, what the live database holds about
   those agents and the entities they point to, in one set-based pass.
3. **Decide** (:mod:`.plan`, pure) what happens to each entity (blocks, archives, tools, folders,
   identities, groups): written from the snapshot, kept as it is live, reused by a copy, matched
   by name... (see :class:`Action`), which rows each table gets and which live rows they replace.
4. **Apply** (:mod:`.apply`) in the same transaction: stage the rows in temporary tables, delete
   the live rows of the restored scope that the snapshot does not have (children first), upsert
   the snapshot's rows (parents first), fix references to rows that no longer exist, keep
   ``message_seq_id`` ahead, commit. While applying, Letta's own per-agent Redis lock
   (:mod:`lifeboat.letta.locks`) is held and the agent rows are locked ``FOR UPDATE``;
   afterwards the agents' Redis keys are dropped (:mod:`.run`).

In place, ids are kept. As a copy, every row owned by the copy gets a new id and every reference
is rewritten (:class:`~lifeboat.letta.subgraph.IdRemap`).
"""

from lifeboat.ops.agent_restore.report import (
    Action,
    AgentPlanEntry,
    AgentRestoreReport,
    EntityDecision,
    Mode,
    Options,
    ReadStats,
    SharedPolicy,
    TablePlan,
)
from lifeboat.ops.agent_restore.run import run_agent_restore
from lifeboat.ops.agent_restore.source import SnapshotSource, catalog, select_agents

__all__ = [
    "Action",
    "AgentPlanEntry",
    "AgentRestoreReport",
    "EntityDecision",
    "Mode",
    "Options",
    "ReadStats",
    "SharedPolicy",
    "SnapshotSource",
    "TablePlan",
    "catalog",
    "run_agent_restore",
    "select_agents",
]
