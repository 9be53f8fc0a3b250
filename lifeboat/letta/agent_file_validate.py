"""Validating an agent file before anything is written: every problem, not just the first.

Three passes, each cheap and database-free (the importer adds the checks that need the target
database):

1. :func:`~lifeboat.letta.agent_file_parse.parse` — size, encoding, JSON syntax, nesting depth,
   and a scan of every value (no NUL characters or lone surrogates, which PostgreSQL cannot
   store; finite numbers only).
2. :func:`~lifeboat.letta.agent_file_parse.to_model` — the pydantic models of
   :mod:`lifeboat.letta.agent_file`: types and required fields.
3. :func:`check_document` (this module) — file-local id formats, duplicates, every cross reference
   (tool/block/source/message/group/file ids, extras), names that look like paths, counts.

Letta's own importer validates only id formats, duplicates and file/source references up front
and discovers the rest half-way through a non-transactional import (docs/LETTA.md §7); lifeboat
refuses such files before opening a transaction.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from lifeboat.letta.agent_file import FILE_ID_PREFIX, AgentEntry, AgentFile, CompleteExtras, MessageEntry
from lifeboat.letta.agent_file_embedding import embedding_problem
from lifeboat.letta.agent_file_limits import DEFAULT_LIMITS, Limits, Problems, fail
from lifeboat.letta.agent_file_parse import parse, to_model
from lifeboat.letta.revisions import RELEASES, is_known, release_label

__all__ = ["DEFAULT_LIMITS", "Limits", "check_document", "fail", "path_problem", "validate_bytes"]

_FILE_ID = {
    prefix: re.compile(rf"^{re.escape(prefix)}-(0|[1-9][0-9]{{0,8}})$")
    for prefix in set(FILE_ID_PREFIX.values())
}
# Letta's CreateAgent.validate_name: letters (any language), digits, spaces, hyphens, underscores, apostrophes.
_AGENT_NAME = re.compile(r"^[\w '\-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(name: str | None, *, what: str, slashes: int = 0, limit: int = 255) -> str | None:
    """Why ``name`` is not a safe single name (or ``source/file`` when ``slashes=1``), or None.

    Agent files come from elsewhere; their names end up in file names of exports, in the
    agent's context window and (for files) in ``source/file`` paths that Letta's file tools
    open. Names that look like paths are refused rather than silently rewritten.
    """
    if name is None:
        return None
    if not name.strip():
        return f"{what} is empty"
    if len(name) > limit:
        return f"{what} is {len(name)} characters long (limit {limit})"
    if _CONTROL.search(name):
        return f"{what} {name[:40]!r} contains control characters"
    if "\\" in name or name.startswith(("/", "~")) or _DRIVE.match(name):
        return f"{what} {name[:40]!r} looks like a path"
    segments = name.split("/")
    if len(segments) > slashes + 1 or any(part in ("", ".", "..") for part in segments):
        return f"{what} {name[:40]!r} looks like a path"
    return None


def check_document(doc: AgentFile, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Every id, reference, name and count problem of a parsed agent file."""
    problems = Problems(limits.max_problems)
    _check_revision(doc, problems)
    _check_counts(doc, limits, problems)
    _check_ids(doc, problems)
    _check_names(doc, limits, problems)
    for index, agent in enumerate(doc.agents):
        _check_agent(doc, index, agent, limits, problems)
    _check_groups(doc, problems)
    _check_files(doc, problems)
    _check_tools(doc, problems)
    if not limits.allow_stdio_mcp:
        for index, server in enumerate(doc.mcp_servers):
            if server.server_type == "stdio" or server.stdio_config:
                command = str((server.stdio_config or {}).get("command", "?"))[:60]
                problems.add(
                    f"mcp_servers[{index}] {server.server_name[:40]!r} is a stdio server that would run"
                    f" {command!r} on the Letta host (allow with --allow-stdio-mcp)"
                )
    if doc.lifeboat is not None:
        _check_extras(doc, doc.lifeboat, problems)
    return problems.as_list()


def validate_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> AgentFile:
    """All three passes; raises :class:`ValidationFailed` listing every problem."""
    doc = to_model(parse(data, limits), limits)
    problems = check_document(doc, limits)
    if problems:
        raise fail(problems)
    return doc


def _check_revision(doc: AgentFile, problems: Problems) -> None:
    """The exporting server's alembic revision, when recorded, must be a Letta release we know.

    Letta writes "unknown" when it cannot read its revision and never checks it on import; a
    revision no known release has means a newer (or forked) format that may not mean what the
    models here assume.
    """
    revision = doc.metadata.get("revision_id")
    if revision and revision != "unknown" and not is_known(revision):
        problems.add(
            f"metadata.revision_id: {revision[:40]!r} is not the alembic head of any known Letta release"
            f" (the newest lifeboat knows is {release_label(RELEASES[-1].head)})"
        )


def _check_counts(doc: AgentFile, limits: Limits, problems: Problems) -> None:
    if not doc.agents:
        problems.add("agents: the file contains no agent")
    if len(doc.agents) > limits.max_agents:
        problems.add(f"agents: {len(doc.agents)} agents (limit {limits.max_agents})")
    for key in ("groups", "blocks", "files", "sources", "tools", "mcp_servers", "skills"):
        count = len(getattr(doc, key))
        if count > limits.max_entities:
            problems.add(f"{key}: {count} entries (limit {limits.max_entities})")
    total = sum(len(agent.messages) for agent in doc.agents)
    if total > limits.max_messages:
        problems.add(f"messages: {total} messages (limit {limits.max_messages})")


def _id_problem(value: str, kind: str) -> str | None:
    prefix = FILE_ID_PREFIX[kind]
    if _FILE_ID[prefix].match(value):
        return None
    return f"{kind}: id {value[:60]!r} is not of the form '{prefix}-<n>'"


def _all_ids(doc: AgentFile) -> Iterator[tuple[str, str]]:
    """(kind, id) of every entity that carries a file-local id."""
    for kind in ("agents", "groups", "blocks", "files", "sources", "tools", "mcp_servers"):
        for entity in getattr(doc, kind):
            yield kind, entity.id
    for agent in doc.agents:
        for message in agent.messages:
            yield "messages", message.id
    extras = doc.lifeboat
    if extras is None:
        return
    for kind in ("archives", "passages", "source_passages", "identities"):
        for entity in getattr(extras, kind):
            yield kind, entity.id
    for block in extras.isolated_blocks:
        yield "blocks", block.id
    for agent_extra in extras.agents.values():
        for conversation in agent_extra.conversations:
            yield "conversations", conversation.id
            for message in conversation.messages:
                yield "messages", message.id


def _check_ids(doc: AgentFile, problems: Problems) -> None:
    seen: Counter[str] = Counter()
    for kind, value in _all_ids(doc):
        problem = _id_problem(value, kind)
        if problem:
            problems.add(problem)
        seen[value] += 1
    for value, count in seen.items():
        if count > 1:
            problems.add(f"id {value[:60]!r} is used by {count} entities")


def _check_names(doc: AgentFile, limits: Limits, problems: Problems) -> None:
    n = limits.max_name_chars
    for index, agent in enumerate(doc.agents):
        where = f"agents[{index}].name"
        problem = path_problem(agent.name, what=where, limit=n)
        if problem is None and not _AGENT_NAME.match(agent.name):
            problem = f"{where} {agent.name[:40]!r} may only hold letters, digits, spaces, - _ and '"
        _add(problems, problem)
    for index, block in enumerate(doc.blocks):
        _add(problems, path_problem(block.label, what=f"blocks[{index}].label", limit=n))
    for index, tool in enumerate(doc.tools):
        _add(problems, path_problem(tool.name, what=f"tools[{index}].name", limit=n))
    for index, source in enumerate(doc.sources):
        _add(problems, path_problem(source.name, what=f"sources[{index}].name", limit=n))
    for index, file in enumerate(doc.files):
        _add(problems, path_problem(file.file_name, what=f"files[{index}].file_name", slashes=1, limit=2 * n))
        _add(
            problems,
            path_problem(file.original_file_name, what=f"files[{index}].original_file_name", limit=n),
        )
    for index, server in enumerate(doc.mcp_servers):
        _add(problems, path_problem(server.server_name, what=f"mcp_servers[{index}].server_name", limit=n))
    for index, skill in enumerate(doc.skills):
        _add(problems, path_problem(skill.name, what=f"skills[{index}].name", limit=n))
        for path in skill.files or {}:
            _add(problems, path_problem(path, what=f"skills[{index}].files key", slashes=16, limit=4 * n))


def _add(problems: Problems, problem: str | None) -> None:
    if problem:
        problems.add(problem)


def _check_refs(problems: Problems, where: str, refs: list[str] | None, known: set[str], what: str) -> None:
    for ref in refs or []:
        if ref not in known:
            problems.add(f"{where}: {what} {ref[:60]!r} is not in the file")
    duplicates = [ref for ref, count in Counter(refs or []).items() if count > 1]
    if duplicates:
        problems.add(f"{where}: lists {duplicates[0][:60]!r} more than once")


def _check_agent(doc: AgentFile, index: int, agent: AgentEntry, limits: Limits, problems: Problems) -> None:
    where = f"agents[{index}]"
    _check_refs(problems, f"{where}.tool_ids", agent.tool_ids, {t.id for t in doc.tools}, "tool")
    _check_refs(problems, f"{where}.block_ids", agent.block_ids, {b.id for b in doc.blocks}, "block")
    sources = {s.id for s in doc.sources}
    _check_refs(problems, f"{where}.source_ids", agent.source_ids, sources, "source")
    _check_refs(problems, f"{where}.folder_ids", agent.folder_ids, sources, "folder")
    _check_refs(problems, f"{where}.group_ids", agent.group_ids, {g.id for g in doc.groups}, "group")
    if agent.identity_ids:
        problems.add(f"{where}.identity_ids: identities are carried only in lifeboat's complete extras")
    if agent.include_base_tools or agent.include_multi_agent_tools or agent.include_default_source:
        problems.add(
            f"{where}: include_base_tools/include_multi_agent_tools/include_default_source must be false"
        )
    if agent.memory_blocks or agent.tools:
        problems.add(f"{where}: memory_blocks/tools must be empty (blocks and tools are referenced by id)")
    if agent.llm_config is None or agent.embedding_config is None:
        problems.add(f"{where}: llm_config and embedding_config are required")
    if agent.system is None:
        problems.add(f"{where}.system: the system prompt is missing")
    for key, items in (("tags", agent.tags), ("secrets", agent.secrets), ("tool_ids", agent.tool_ids)):
        if items is not None and len(items) > limits.max_list_items:
            problems.add(f"{where}.{key}: {len(items)} entries (limit {limits.max_list_items})")
    for key in list(agent.secrets or {}) + list(agent.tool_exec_environment_variables or {}):
        _add(problems, path_problem(key, what=f"{where}.secrets key", limit=limits.max_name_chars))
    _check_block_labels(doc, where, agent, problems)
    _check_messages(where, agent.id, agent.messages, agent.in_context_message_ids, problems)
    _check_files_agents(doc, where, agent, problems)


def _check_block_labels(doc: AgentFile, where: str, agent: AgentEntry, problems: Problems) -> None:
    labels = {b.id: b.label for b in doc.blocks}
    counts = Counter(labels[b] for b in agent.block_ids or [] if b in labels)
    for label, count in counts.items():
        if count > 1:
            problems.add(f"{where}.block_ids: {count} blocks share the label {label[:40]!r} (one per agent)")


def _check_messages(
    where: str, agent_id: str, messages: list[MessageEntry], in_context: list[str], problems: Problems
) -> None:
    by_id = {m.id: m for m in messages}
    _check_refs(problems, f"{where}.in_context_message_ids", in_context, set(by_id), "message")
    if in_context and in_context[0] in by_id and by_id[in_context[0]].role != "system":
        problems.add(f"{where}.in_context_message_ids: the first message must be the system message")
    for position, message in enumerate(messages):
        if message.agent_id not in (None, agent_id):
            problems.add(
                f"{where}.messages[{position}].agent_id: {message.agent_id[:60]!r} is not {agent_id!r}"
            )


def _check_files_agents(doc: AgentFile, where: str, agent: AgentEntry, problems: Problems) -> None:
    files = {f.id: f for f in doc.files}
    sources = {s.id for s in doc.sources}
    names: Counter[str] = Counter()
    for position, link in enumerate(agent.files_agents):
        at = f"{where}.files_agents[{position}]"
        if link.agent_id != agent.id:
            problems.add(f"{at}.agent_id: {link.agent_id[:60]!r} is not {agent.id!r}")
        if link.file_id not in files:
            problems.add(f"{at}.file_id: file {link.file_id[:60]!r} is not in the file")
        elif files[link.file_id].source_id != link.source_id:
            problems.add(f"{at}.source_id: {link.source_id[:60]!r} is not the folder of {link.file_id!r}")
        if link.source_id not in sources:
            problems.add(f"{at}.source_id: source {link.source_id[:60]!r} is not in the file")
        _add(problems, path_problem(link.file_name, what=f"{at}.file_name", slashes=1, limit=510))
        names[link.file_name] += 1
    for name, count in names.items():
        if count > 1:
            problems.add(
                f"{where}.files_agents: file name {name[:60]!r} appears {count} times (unique per agent)"
            )


def _check_groups(doc: AgentFile, problems: Problems) -> None:
    agents = {a.id for a in doc.agents}
    for index, group in enumerate(doc.groups):
        where = f"groups[{index}]"
        _check_refs(problems, f"{where}.agent_ids", group.agent_ids, agents, "agent")
        manager = group.manager_config.get("manager_agent_id")
        if manager is not None and manager not in agents:
            problems.add(
                f"{where}.manager_config.manager_agent_id: agent {str(manager)[:60]!r} is not in the file"
            )
        if group.manager_config.get("manager_type") != "round_robin" and manager is None:
            problems.add(
                f"{where}.manager_config: a {group.manager_config.get('manager_type')} group needs a manager"
            )


def _check_files(doc: AgentFile, problems: Problems) -> None:
    sources = {s.id for s in doc.sources}
    for index, file in enumerate(doc.files):
        if file.source_id not in sources:
            problems.add(f"files[{index}].source_id: source {file.source_id[:60]!r} is not in the file")
    for name, count in Counter(s.name for s in doc.sources).items():
        if count > 1:
            problems.add(f"sources: the folder name {name[:60]!r} appears {count} times")


def _check_tools(doc: AgentFile, problems: Problems) -> None:
    for name, count in Counter(t.name for t in doc.tools).items():
        if count > 1:
            problems.add(
                f"tools: the tool name {name[:60]!r} appears {count} times (tools are unique by name)"
            )
    for index, tool in enumerate(doc.tools):
        if not tool.json_schema:
            problems.add(f"tools[{index}] {tool.name[:40]!r}: json_schema is missing")
    for name, count in Counter(s.server_name for s in doc.mcp_servers).items():
        if count > 1:
            problems.add(f"mcp_servers: the server name {name[:60]!r} appears {count} times")


def _check_extras(doc: AgentFile, extras: CompleteExtras, problems: Problems) -> None:
    agents = {a.id for a in doc.agents}
    messages = {m.id for a in doc.agents for m in a.messages}
    blocks = {b.id for b in doc.blocks} | {b.id for b in extras.isolated_blocks}
    archives = {a.id for a in extras.archives}
    identities = {i.id for i in extras.identities}
    _check_refs(problems, "lifeboat.agents", list(extras.agents), agents, "agent")
    for agent_id, extra in extras.agents.items():
        where = f"lifeboat.agents.{agent_id[:40]}"
        _check_refs(problems, f"{where}.archive_ids", extra.archive_ids, archives, "archive")
        _check_refs(
            problems, f"{where}.owned_archive_ids", extra.owned_archive_ids, set(extra.archive_ids), "archive"
        )
        _check_refs(problems, f"{where}.identity_ids", extra.identity_ids, identities, "identity")
        _check_refs(
            problems, f"{where}.group_state", list(extra.group_state), {g.id for g in doc.groups}, "group"
        )
        processed = [
            s.last_processed_message_id for s in extra.group_state.values() if s.last_processed_message_id
        ]
        _check_refs(
            problems,
            f"{where}.group_state",
            processed,
            {m.id for a in doc.agents for m in a.messages},
            "message",
        )
        agent_messages = {m.id for a in doc.agents if a.id == agent_id for m in a.messages}
        for conversation in extra.conversations:
            at = f"{where}.conversations.{conversation.id[:40]}"
            own = {m.id for m in conversation.messages}
            _check_messages(at, agent_id, conversation.messages, [], problems)
            members = [m.message_id for m in conversation.members]
            _check_refs(problems, f"{at}.members", members, own | agent_messages, "message")
            _check_refs(
                problems, f"{at}.isolated_block_ids", conversation.isolated_block_ids, blocks, "block"
            )
            messages |= own
    _check_refs(problems, "lifeboat.messages", list(extras.messages), messages, "message")
    for identity in extras.identities:
        where = f"lifeboat.identities.{identity.id[:40]}"
        _check_refs(problems, f"{where}.agent_ids", identity.agent_ids, agents, "agent")
        _check_refs(problems, f"{where}.block_ids", identity.block_ids, blocks, "block")
    files = {f.id: f for f in doc.files}
    for passage in extras.passages:
        if passage.archive_id not in archives:
            problems.add(
                f"lifeboat.passages.{passage.id[:40]}: archive {str(passage.archive_id)[:60]!r} is not in the file"
            )
        _add(problems, embedding_problem(passage))
    for passage in extras.source_passages:
        file = files.get(passage.file_id or "")
        if file is None or file.source_id != passage.source_id:
            problems.add(
                f"lifeboat.source_passages.{passage.id[:40]}: file/folder reference is not in the file"
            )
        _add(problems, embedding_problem(passage))
