"""An agent's memory as Letta Code memory files (MemFS), committed in one git commit.

Letta Code's memory layout (``root-marker`` policy):

* root ``MEMORY.md`` — an index, no frontmatter;
* every other root ``*.md`` is core memory (compiled into the system prompt) with exactly two
  frontmatter keys, ``name`` and ``description``;
* a child folder is external memory when it holds its own ``MEMORY.md``; its other ``*.md``
  files need the same two keys;
* ``skills/<name>/SKILL.md`` are the agent's skills.

V1 memory blocks become root core-memory files. What Letta Code has no store for becomes
external memory, readable by the agent: ``archival/`` (archival passages, embeddings
omitted), ``files/`` (files the agent had from its folders), ``history/`` (block history).
Custom tools become skills holding their source. The repository gets one commit on ``main``
made with pygit2, with fixed dates so the same input gives the same commit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import RepositoryInitFlag

from lifeboat.letta_code.model import SourceAgent, SourceBlock, SourcePassage
from lifeboat.letta_code.transcript import epoch_ms, iso

PASSAGES_PER_FILE = 200
COMMIT_MESSAGE = "chore: import memory from Letta V1 (lifeboat migrate)"
#: V1 ``tools.source_type`` → file extension (Letta stores "json" for Python tools: the schema kind).
SOURCE_EXTENSIONS = {"typescript": "ts", "javascript": "js"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class MemoryFiles:
    """Relative path → file text, plus what went where (for the report)."""

    files: dict[str, str]
    core: list[str]  # root core-memory files, one per block
    skills: list[str]


def safe_name(text: str, fallback: str) -> str:
    """A file/folder name from free text: letters, digits, ``.``, ``_``, ``-`` only."""
    name = _UNSAFE.sub("-", text).strip("-.")
    return name[:80] or fallback


def one_line(text: str | None, fallback: str) -> str:
    """A frontmatter value: one line, never empty (Letta Code rejects empty values)."""
    flat = " ".join((text or "").split())
    return flat or fallback


def frontmatter(name: str, description: str, body: str) -> str:
    return f"---\nname: {one_line(name, 'memory')}\ndescription: {one_line(description, name)}\n---\n{body}"


def build(agent: SourceAgent) -> MemoryFiles:
    files: dict[str, str] = {}
    core = _core_files(agent.blocks, files)
    sections = []
    if agent.passages:
        sections.append(("archival/MEMORY.md", _archival(agent.passages, files)))
    if agent.files:
        sections.append(("files/MEMORY.md", _files(agent, files)))
    history = [block for block in agent.blocks if block.history]
    if history:
        sections.append(("history/MEMORY.md", _history(history, files)))
    skills = _skills(agent, files)
    files["MEMORY.md"] = _root_index(agent, core, sections, skills)
    return MemoryFiles(files=files, core=[path for path, _ in core], skills=skills)


def _core_files(blocks: list[SourceBlock], files: dict[str, str]) -> list[tuple[str, SourceBlock]]:
    core = []
    taken = {"memory"}
    for block in sorted(blocks, key=lambda b: b.label):
        stem = safe_name(block.label, "block")
        while stem.lower() in taken:
            stem += "-block"
        taken.add(stem.lower())
        path = f"{stem}.md"
        description = block.description or f"Letta V1 memory block '{block.label}'"
        files[path] = frontmatter(block.label, description, block.value)
        core.append((path, block))
    return core


def _root_index(
    agent: SourceAgent,
    core: list[tuple[str, SourceBlock]],
    sections: list[tuple[str, str]],
    skills: list[str],
) -> str:
    lines = [
        "# Memory",
        "",
        f"Migrated from the Letta V1 agent `{agent.id}` ({agent.name}) by lifeboat.",
        "",
        "## Core memory (one file per V1 memory block)",
        "",
    ]
    for path, block in core:
        notes = [f"limit {block.limit}" if block.limit else "", "read-only in V1" if block.read_only else ""]
        if block.shared_with:
            notes.append(
                "shared in V1 with " + ", ".join(block.shared_with) + " (each agent got its own copy)"
            )
        extra = "; ".join(n for n in notes if n)
        lines.append(f"- [{block.label}]({path})" + (f" — {extra}" if extra else ""))
    if sections:
        lines += ["", "## External memory", ""]
        lines += [f"- [{path.split('/')[0]}/]({path}): {summary}" for path, summary in sections]
    if skills:
        lines += ["", "## Skills (V1 custom tools)", ""]
        lines += [f"- [{name}](skills/{name}/SKILL.md)" for name in skills]
    return "\n".join(lines) + "\n"


def _archival(passages: list[SourcePassage], files: dict[str, str]) -> str:
    ordered = sorted(passages, key=lambda p: (p.created_at, p.id))
    chunks = [ordered[i : i + PASSAGES_PER_FILE] for i in range(0, len(ordered), PASSAGES_PER_FILE)]
    index = [
        "# Archival memory",
        "",
        f"{len(ordered)} archival passages of the Letta V1 agent, oldest first. Embeddings were",
        "omitted (Letta Code has no vector store); search the text with grep.",
        "",
    ]
    for n, chunk in enumerate(chunks, start=1):
        path = f"passages-{n:04d}.md"
        body = "\n".join(_passage(p) for p in chunk)
        first, last = iso(chunk[0].created_at), iso(chunk[-1].created_at)
        files[f"archival/{path}"] = frontmatter(
            f"archival-{n:04d}", f"Letta V1 archival passages {first} to {last}", body
        )
        index.append(f"- [{path}]({path}): {len(chunk)} passages, {first} to {last}")
    files["archival/MEMORY.md"] = "\n".join(index) + "\n"
    return f"{len(ordered)} archival passages (text, tags, timestamps; no embeddings)"


def _passage(passage: SourcePassage) -> str:
    tags = ", ".join(passage.tags) if passage.tags else "none"
    return f"## {passage.id}\n\n- created: {iso(passage.created_at)}\n- tags: {tags}\n- archive: {passage.archive}\n\n{passage.text}\n"


def _files(agent: SourceAgent, files: dict[str, str]) -> str:
    index = ["# Files", "", "Files the Letta V1 agent had from its folders (their parsed text).", ""]
    taken: set[str] = set()
    for file in sorted(agent.files, key=lambda f: (f.folder, f.file_name)):
        stem = safe_name(f"{file.folder}--{file.file_name}", "file")
        while stem in taken:
            stem += "-1"
        taken.add(stem)
        state = "open" if file.is_open else "closed"
        window = f", lines {file.visible_lines} were visible" if file.visible_lines else ""
        description = f"File {file.file_name} from folder {file.folder} ({state} in V1{window})"
        files[f"files/{stem}.md"] = frontmatter(
            file.file_name, description, file.text or "(Letta kept no text for this file)\n"
        )
        index.append(f"- [{file.file_name}]({stem}.md): folder {file.folder}, {state}")
    files["files/MEMORY.md"] = "\n".join(index) + "\n"
    return f"{len(agent.files)} files from folders"


def _history(blocks: list[SourceBlock], files: dict[str, str]) -> str:
    index = ["# Memory block history", "", "Earlier values of the V1 memory blocks (block_history).", ""]
    for block in blocks:
        stem = safe_name(block.label, "block")
        body = "\n".join(
            f"## version {row.get('sequence_number')} ({row.get('actor_type') or 'unknown'})\n\n{row.get('value') or ''}\n"
            for row in block.history
        )
        files[f"history/{stem}.md"] = frontmatter(
            f"history-{block.label}", f"History of memory block {block.label}", body
        )
        index.append(f"- [{block.label}]({stem}.md): {len(block.history)} versions")
    files["history/MEMORY.md"] = "\n".join(index) + "\n"
    return f"history of {len(blocks)} memory blocks"


def _skills(agent: SourceAgent, files: dict[str, str]) -> list[str]:
    names = []
    for tool in sorted(agent.tools, key=lambda t: t.name):
        name = safe_name(tool.name, "tool")
        while name in names:
            name += "-1"
        names.append(name)
        description = tool.description or f"Letta V1 custom tool {tool.name}"
        source_file = f"source.{SOURCE_EXTENSIONS.get(tool.source_type or '', 'py')}"
        body = (
            f"# {tool.name}\n\nThis was a custom tool of the Letta V1 agent. Letta Code does not run V1\n"
            f"tools; its source is kept in `{source_file}` and its JSON schema in `schema.json`,\n"
            "so it can be rebuilt as a script or a mod.\n"
        )
        if tool.pip_requirements:
            body += f"\nPython requirements: {json.dumps(tool.pip_requirements)}\n"
        files[f"skills/{name}/SKILL.md"] = frontmatter(name, description, body)
        files[f"skills/{name}/{source_file}"] = tool.source_code or ""
        files[f"skills/{name}/schema.json"] = (
            json.dumps(tool.json_schema or {}, indent=2, ensure_ascii=False) + "\n"
        )
    return names


def _config_value(text: str) -> str:
    """A value for git's config file: one line, quoted, backslashes and quotes escaped."""
    flat = " ".join(text.split()) or "Letta Agent"
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_repository(directory: Path, memory: MemoryFiles, agent_id: str, author: str, when: str) -> str:
    """Write the files and commit them (one commit on ``main``); returns the commit id."""
    directory.mkdir(parents=True, exist_ok=True)
    for relative, text in sorted(memory.files.items()):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # MKPATH without EXTERNAL_TEMPLATE: no copy of the system's sample hooks (Letta Code installs
    # its own hooks when it opens the repository), three times faster per agent.
    repo = pygit2.init_repository(str(directory), flags=RepositoryInitFlag.MKPATH, initial_head="main")
    # The settings Letta Code itself gives a memory repository, in one write of git's config file
    # (four config.set calls rewrite the file four times).
    with (directory / ".git" / "config").open("a", encoding="utf-8") as config:
        config.write(
            f"[user]\n\tname = {_config_value(author)}\n\temail = {agent_id}@letta.com\n"
            f"[letta]\n\tagentId = {agent_id}\n[commit]\n\tgpgsign = false\n"
        )
    index = repo.index
    index.add_all()
    index.write()
    tree = index.write_tree()
    seconds = epoch_ms(when) // 1000
    signature = pygit2.Signature(author, f"{agent_id}@letta.com", seconds, 0)
    commit = repo.create_commit("refs/heads/main", signature, signature, COMMIT_MESSAGE + "\n", tree, [])
    return str(commit)
