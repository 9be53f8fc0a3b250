"""An agent file → the rows Letta 0.16.8's importer would create, as a plan of writes.

:func:`plan_import` is pure: it takes a validated :class:`AgentFile` and a :class:`Target`
(facts read from the destination database) and returns an :class:`ImportPlan` — ordered
inserts/updates plus the id map and warnings (models in
:mod:`lifeboat.letta.agent_file_import_plan`; the rows are planned in ``_shared``, ``_agents``
and ``_extras``, this module runs them in order). Applying it is the caller's job (one transaction,
:mod:`lifeboat.ops.import_af`).

The rows follow ``AgentSerializationManager.import_file`` and the managers it calls
(docs/LETTA.md §7): new ids everywhere; tools matched by name in the organization (kept unless
``overwrite_tools``, as ``override_existing_tools=False``); blocks always new; a folder whose
name is taken gets ``_<8 hex>``; agents created with the file's configuration, tags, secrets
(encrypted like Letta), tool/block/folder links and Letta's creation defaults
(``compaction_settings``, requires-approval tool rules); messages inserted in file order so
``message_seq_id`` numbers them the same way; ``agents.message_ids`` rebuilt from
``in_context_message_ids``; groups with their members and shared blocks.

Where Letta's importer loses information, lifeboat keeps it (documented in docs/AGENT_FILES.md):
file attachments keep their exported open/closed state, files without embeddings are marked as
such instead of being re-embedded, MCP tool metadata points at the imported server, and the
``lifeboat`` extras of a complete export are restored.
"""

from __future__ import annotations

from lifeboat.letta.agent_file import AgentFile
from lifeboat.letta.agent_file_import_extras import ExtrasPlanner
from lifeboat.letta.agent_file_import_plan import (
    CustomTool,
    ExistingTool,
    ImportPlan,
    Options,
    Target,
    Vector,
    Write,
    custom_tool,
    padded_vector,
)

__all__ = [
    "CustomTool",
    "ExistingTool",
    "ImportPlan",
    "Options",
    "Target",
    "Vector",
    "Write",
    "custom_tool",
    "padded_vector",
    "plan_import",
]


class _Planner(ExtrasPlanner):
    """Runs the parts in the order Letta's importer writes (rows before the rows that name them)."""

    def run(self) -> ImportPlan:
        self._mcp_servers()
        for tool in self.doc.tools:
            self._tool(tool)
        for block in [*self.doc.blocks, *self.extras.isolated_blocks]:
            self._block(block)
        self._sources()
        has_passages = {p.file_id for p in self.extras.source_passages}
        for file in self.doc.files:
            self._file(file, file.id in has_passages)
        self._identities_rows()
        for group in self.doc.groups:  # ids first: messages name their group
            self._map(group.id, "group")
        for index, agent in enumerate(self.doc.agents):
            self._agent(agent, index)
        for agent in self.doc.agents:
            self._messages(agent)
            self._files_agents(agent)
        self._archives()
        self._source_passages()
        for group in self.doc.groups:
            self._group(group)
        self._identity_links()
        for agent in self.doc.agents:
            self._conversations(agent)
        if self.doc.skills:
            self.plan.warnings.append(f"{len(self.doc.skills)} skill(s) ignored: Letta does not store skills")
        return self.plan


def plan_import(doc: AgentFile, target: Target, options: Options | None = None) -> ImportPlan:
    """The ordered writes that import ``doc`` into the database described by ``target``."""
    return _Planner(doc, target, options or Options()).run()
