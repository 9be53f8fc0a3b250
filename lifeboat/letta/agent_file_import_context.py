"""The state one agent-file import plan is built in, shared by the planner's parts.

The parts (:mod:`~lifeboat.letta.agent_file_import_shared`, ``_agents``, ``_extras``) build
on :class:`PlanContext`: the file, the target, the options, the plan being filled, and the
lookups later rows need (block labels, tool names, links already written).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifeboat.letta.agent_file import AgentFile, CompleteExtras
from lifeboat.letta.agent_file_import_plan import ImportPlan, Options, Target
from lifeboat.letta.ids import new_id


class PlanContext:
    """The plan being filled and the lookups shared by the planner's parts."""

    def __init__(self, doc: AgentFile, target: Target, options: Options) -> None:
        self.doc = doc
        self.target = target
        self.options = options
        self.plan = ImportPlan()
        self.extras = doc.lifeboat or CompleteExtras(complete=False)
        # Letta's importer re-parses JSON objects through its pydantic models (adding default
        # fields); a complete lifeboat export is restored verbatim instead: it is a backup.
        self.verbatim = self.extras.complete
        self.org = target.organization_id
        self.user = target.user_id
        self.block_labels: dict[str, str] = {}  # db block id -> label
        self.tool_names: dict[str, str] = {}  # db tool id -> name
        self.tool_approval: dict[str, bool] = {}  # db tool id -> default_requires_approval
        self.blocks_agents: set[tuple[str, str]] = set()

    def _normal(self, normalize: Callable[[Any], Any], value: Any) -> Any:
        return value if self.verbatim else normalize(value)

    def _map(self, file_id: str, prefix: str) -> str:
        db_id = new_id(prefix)
        self.plan.id_map[file_id] = db_id
        return db_id

    def _audit(self) -> dict[str, Any]:
        return {"organization_id": self.org, "_created_by_id": self.user, "_last_updated_by_id": self.user}

    def _attach_block(self, agent_db_id: str, block_db_id: str) -> None:
        if (agent_db_id, block_db_id) in self.blocks_agents:
            return
        self.blocks_agents.add((agent_db_id, block_db_id))
        self.plan.insert(
            "blocks_agents",
            agent_id=agent_db_id,
            block_id=block_db_id,
            block_label=self.block_labels[block_db_id],
        )
