"""Write migrated agents into a Letta Code local-backend directory, safely.

Every agent is first built completely in a staging directory next to the target (same file
system); only then are its pieces renamed into place. An agent that already exists in the
target is left alone when it is identical to what would be written (running twice changes
nothing), and refused otherwise unless ``force`` is given.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from lifeboat.letta_code import layout, memfs, transcript
from lifeboat.letta_code.model import SourceAgent, SourceConversation

#: The ``cwd`` recorded in transcript headers (Letta Code records where a session started).
TRANSCRIPT_CWD = "/"


@dataclass
class ConversationOut:
    id: str  # "default" or the V1 conversation id
    path: str  # the conversation folder, relative to the backend directory
    messages_in: int  # V1 rows (system rows included)
    entries: int  # transcript entries written
    in_context: int
    system_left_out: int


@dataclass
class AgentOut:
    """What was built for one agent: where each piece goes, and the counts for the report."""

    v1_id: str
    id: str
    name: str
    model: str
    model_note: str | None
    paths: list[str]  # record, conversation folders, memfs folder (relative)
    conversations: list[ConversationOut] = field(default_factory=list)
    memory_files: list[str] = field(default_factory=list)
    core_files: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    commit: str = ""


def build_agent(agent: SourceAgent, staging: Path) -> AgentOut:
    """Write one agent's record, conversations and memory repository under ``staging``."""
    local_id = layout.local_agent_id(agent.id)
    record, note = layout.agent_record(agent)
    record_path = layout.agent_record_path(local_id)
    _write(staging / record_path, layout.pretty_json(record))
    out = AgentOut(agent.id, local_id, agent.name, record["model"], note, [record_path])
    for conversation in agent.conversations:
        out.conversations.append(_conversation(conversation, local_id, agent, staging))
        out.paths.append(out.conversations[-1].path)
    memory = memfs.build(agent)
    memory_dir = layout.memfs_dir(local_id)
    out.commit = memfs.write_repository(staging / memory_dir, memory, local_id, agent.name, agent.updated_at)
    out.paths.append(memory_dir)
    out.memory_files = sorted(memory.files)
    out.core_files, out.skills = memory.core, memory.skills
    return out


def _conversation(
    conversation: SourceConversation, agent_id: str, agent: SourceAgent, staging: Path
) -> ConversationOut:
    conversation_id = conversation.id or "default"
    messages: list[dict[str, Any]] = []
    produced: dict[str, list[str]] = {}
    for message in conversation.messages:
        converted = transcript.convert(message, agent_id, conversation_id)
        produced[message.id] = [m["id"] for m in converted]
        messages.extend(converted)
    in_context = [ident for v1_id in conversation.in_context_ids for ident in produced.get(v1_id, [])]
    created = transcript.iso(conversation.created_at)
    last = messages[-1]["metadata"]["created_at"] if messages else None
    record = layout.conversation_record(agent_id, conversation, in_context, last or created)
    record["created_at"] = created
    record["last_message_at"] = last
    folder = layout.conversation_dir(conversation.id, agent_id)
    target = staging / folder
    _write(target / "conversation.json", layout.pretty_json(record))
    _write(target / "manifest.json", layout.pretty_json(layout.transcript_manifest(created)))
    if messages:
        rows = [
            transcript.session_header(conversation_id, created, TRANSCRIPT_CWD),
            *transcript.entries(messages),
        ]
        _write(target / "messages.jsonl", transcript.jsonl(rows))
    system = sum(1 for m in conversation.messages if m.role == "system")
    return ConversationOut(
        conversation_id, folder, len(conversation.messages), len(messages), len(in_context), system
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- installing -----------------------------------------------------------------------------------


STAGING_PREFIX = ".lifeboat-migrate-"
LOCK_FILE = ".lifeboat-migrate.lock"


@contextmanager
def staging_area(target: Path) -> Iterator[Path]:
    """A fresh staging directory inside ``target`` (created if needed), removed afterwards.

    Holds an exclusive lock on ``target`` meanwhile, so two migrations into one directory never
    interleave; staging directories left by a migration that was killed are removed first.
    """
    target.mkdir(parents=True, exist_ok=True)
    with (target / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        for stale in target.glob(STAGING_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def existing_state(target: Path, out: AgentOut, staging: Path) -> str:
    """``new`` (nothing of the agent in ``target``), ``same`` (identical) or ``different``."""
    present = [path for path in out.paths if (target / path).exists()]
    if not present:
        return "new"
    if len(present) != len(out.paths):
        return "different"
    for path in out.paths:
        if not _same(target / path, staging / path):
            return "different"
    return "same"


def _same(existing: Path, built: Path) -> bool:
    if built.is_file():
        return existing.is_file() and existing.read_bytes() == built.read_bytes()
    if built.name == "memory" and (built / ".git").exists():
        return _head_tree(existing) == _head_tree(built)
    names = sorted(p.name for p in built.iterdir())
    if sorted(p.name for p in existing.iterdir() if p.name != "system-prompt.json") != names:
        return False
    return all(_same(existing / name, built / name) for name in names)


def _head_tree(directory: Path) -> str | None:
    try:
        repo = pygit2.Repository(str(directory))
        return str(repo.head.peel(pygit2.Commit).tree_id)
    except (pygit2.GitError, KeyError, ValueError):
        return None


def install(target: Path, paths: list[str], staging: Path) -> None:
    """Move the built pieces into ``target``, replacing what is there (the caller decided it may).

    Letta Code finds agents by their record, so the record goes last (and an old record first):
    an interruption leaves the agent either complete or absent, never half old, half new.
    """
    record, *pieces = paths  # AgentOut.paths: the record first
    (target / record).unlink(missing_ok=True)
    for path in [*pieces, record]:
        destination = target / path
        if destination.is_dir():
            shutil.rmtree(destination)
        elif destination.exists():
            destination.unlink()
        destination.parent.mkdir(parents=True, exist_ok=True)
        (staging / path).rename(destination)
