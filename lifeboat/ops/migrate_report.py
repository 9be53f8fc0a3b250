"""The report of a migration (human and ``--json``): per agent, what went where, counts before
and after, and everything not carried over with the reason."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lifeboat.letta_code.model import SourceAgent
from lifeboat.letta_code.writer import AgentOut


class Count(BaseModel):
    v1: int  # rows in Letta V1
    written: int  # what Letta Code got


class ConversationMigration(BaseModel):
    id: str  # "default" or the V1 conversation id (kept as Letta Code's conversation id)
    path: str
    messages: Count  # V1 message rows → transcript entries (system rows are not entries)
    in_context: int


class LeftOut(BaseModel):
    what: str
    count: int
    reason: str


class AgentMigration(BaseModel):
    v1_id: str
    id: str  # the Letta Code agent id
    name: str
    state: str  # dry run: new/same/different; after: written/replaced/unchanged
    model: str
    model_note: str | None = None
    counts: dict[str, Count]
    conversations: list[ConversationMigration]
    memory_files: list[str]
    core_memory: list[str]
    skills: list[str]
    memory_commit: str
    paths: list[str]
    left_out: list[LeftOut] = Field(default_factory=list)


class MigrateReport(BaseModel):
    to: str = "letta-code"
    letta_code_version: str
    source: str  # snapshot | database
    source_label: str
    letta_revision: str | None = None
    target: str
    dry_run: bool
    force: bool
    agents: list[AgentMigration] = Field(default_factory=list)
    refused: str | None = None
    seconds: float = 0.0

    @property
    def id_map(self) -> dict[str, str]:
        return {agent.v1_id: agent.id for agent in self.agents}


def agent_migration(agent: SourceAgent, out: AgentOut, state: str) -> AgentMigration:
    messages_v1 = sum(c.messages_in for c in out.conversations)
    system = sum(c.system_left_out for c in out.conversations)
    left_out = [
        LeftOut(what=what, count=count, reason=reason)
        for what, (count, reason) in sorted(agent.left_out.items())
    ]
    if system:
        left_out.append(
            LeftOut(
                what="system messages",
                count=system,
                reason="compiled prompts; Letta Code compiles its own from the agent's system prompt and memory files",
            )
        )
    unplaced = sum(
        agent.left_out.get(k, (0, ""))[0] for k in ("deleted messages", "messages of missing conversations")
    )
    other_tools = sum(agent.left_out.get(k, (0, ""))[0] for k in ("built-in tools", "external tools"))
    passage_files = [f for f in out.memory_files if f.startswith("archival/") and not f.endswith("MEMORY.md")]
    return AgentMigration(
        v1_id=agent.id,
        id=out.id,
        name=agent.name,
        state=state,
        model=out.model,
        model_note=out.model_note,
        counts={
            "messages": Count(v1=messages_v1 + unplaced, written=sum(c.entries for c in out.conversations)),
            "conversations": Count(v1=len(agent.conversations), written=len(out.conversations)),
            "blocks": Count(v1=len(agent.blocks), written=len(out.core_files)),
            "passages": Count(v1=len(agent.passages), written=len(agent.passages) if passage_files else 0),
            "files": Count(
                v1=len(agent.files),
                written=sum(
                    1 for f in out.memory_files if f.startswith("files/") and not f.endswith("MEMORY.md")
                ),
            ),
            "tools": Count(v1=len(agent.tools) + other_tools, written=len(out.skills)),
        },
        conversations=[
            ConversationMigration(
                id=c.id,
                path=c.path,
                messages=Count(v1=c.messages_in, written=c.entries),
                in_context=c.in_context,
            )
            for c in out.conversations
        ],
        memory_files=out.memory_files,
        core_memory=out.core_files,
        skills=out.skills,
        memory_commit=out.commit,
        paths=out.paths,
        left_out=left_out,
    )
