"""A synthetic Letta deployment at scale, written with COPY into the real migrated 0.16.8 schema.

Realistic shapes, not realistic semantics: agents with llm/embedding configs and an in-context
``message_ids`` list headed by a system message; per-agent and shared memory blocks; messages
with the roles, JSON content and sizes Letta writes; runs, steps and provider traces; archival
passages with 1536 random floats zero-padded to ``vector(4096)``; folders with files attached to
some agents. Deterministic for a given seed. The default scale is about 2 GB on disk.

    python bench/synthetic.py --dsn postgresql://letta:letta@127.0.0.1:5432/letta --agents 5000
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

ORG = "org-00000000-0000-4000-8000-000000000000"
USER = "user-00000000-0000-4000-8000-000000000000"
EMBED_DIM = 1536
VECTOR_DIM = 4096
LLM_CONFIG = json.dumps(
    {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": "https://api.openai.com/v1",
        "context_window": 128000,
        "handle": "openai/gpt-4o-mini",
        "temperature": 0.7,
        "max_tokens": 4096,
    }
)
EMBEDDING_CONFIG = json.dumps(
    {
        "embedding_model": "text-embedding-3-small",
        "embedding_endpoint_type": "openai",
        "embedding_endpoint": "https://api.openai.com/v1",
        "embedding_dim": EMBED_DIM,
        "embedding_chunk_size": 300,
        "handle": "openai/text-embedding-3-small",
    }
)
WORDS = [
    "memory",
    "agent",
    "user",
    "remember",
    "project",
    "deadline",
    "meeting",
    "schedule",
    "coffee",
    "travel",
    "budget",
    "report",
    "python",
    "database",
    "backup",
    "restore",
    "server",
    "message",
    "context",
    "window",
    "archive",
    "passage",
    "folder",
    "file",
    "summary",
    "preference",
    "birthday",
    "weekend",
    "family",
    "music",
    "book",
    "recipe",
    "garden",
    "weather",
    "invoice",
    "plan",
]


@dataclass(frozen=True)
class Scale:
    agents: int = 5000
    messages_per_agent: int = 200
    passages_per_agent: int = 8
    in_context: int = 24
    agents_per_shared_block: int = 50
    agents_per_folder: int = 25
    files_per_folder: int = 4
    seed: int = 42


def uid(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def esc(value: object) -> str:
    """One COPY TEXT field."""
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def row(*values: object) -> str:
    return "\t".join(esc(v) for v in values) + "\n"


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words)).capitalize() + "."


class Writer:
    """Buffers COPY rows per table and flushes them in big writes."""

    def __init__(self, conn: psycopg.Connection, table: str, columns: list[str]) -> None:
        self.conn, self.table, self.columns = conn, table, columns
        self.buffer: list[str] = []
        self.size = 0
        self.rows = 0

    def add(self, *values: object) -> None:
        line = row(*values)
        self.buffer.append(line)
        self.size += len(line)
        self.rows += 1

    def flush(self) -> None:
        if not self.buffer:
            return
        cols = ", ".join(f'"{c}"' for c in self.columns)
        with self.conn.cursor() as cur, cur.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
            copy.write("".join(self.buffer).encode())
        self.buffer, self.size = [], 0


def vector_text(rng: random.Random, pool: list[str]) -> str:
    values = rng.choices(pool, k=EMBED_DIM)
    return "[" + ",".join(values) + ",0" * (VECTOR_DIM - EMBED_DIM) + "]"


def message_content(role: str, text: str) -> str:
    return json.dumps([{"type": "text", "text": text}])


def generate(dsn: str, scale: Scale, part: int = 0) -> dict[str, int]:
    """Write ``scale.agents`` agents into ``dsn``; returns the rows written per table.

    ``part`` > 0 adds another such deployment to the same database (agents ``part * agents`` on,
    seed ``scale.seed + part``, the tools of part 0): parts 0..n-1 are the deployment at n times the
    scale, and part 0 alone is exactly the default deployment.
    """
    rng = random.Random(scale.seed + part)
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=False) as conn:
        conn.execute("SET synchronous_commit = off")
        _base_rows(conn)
        writers = _writers(conn)
        tools = _tools(writers, rng) if part == 0 else _existing_tools(conn)
        shared_blocks: list[str] = []
        folders = _folders(writers, rng, scale, part)
        pool = [f"{rng.uniform(-0.08, 0.08):.6f}" for _ in range(4096)]
        for index in range(part * scale.agents, (part + 1) * scale.agents):
            _agent(writers, rng, scale, index, tools, shared_blocks, folders, pool)
            if sum(writer.size for writer in writers.values()) > 32 << 20:
                _flush_all(writers)
        _flush_all(writers)
        conn.execute("SELECT setval('message_seq_id', (SELECT max(sequence_id) FROM messages))")
        conn.commit()
        counts = {name: w.rows for name, w in writers.items()}
    counts["seconds"] = int(time.monotonic() - started)
    return counts


def _base_rows(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO organizations (id, name, privileged_tools) VALUES (%s, 'default_org', false) "
        "ON CONFLICT DO NOTHING",
        (ORG,),
    )
    conn.execute(
        "INSERT INTO users (id, name, organization_id) VALUES (%s, 'default_user', %s) ON CONFLICT DO NOTHING",
        (USER, ORG),
    )


_COLUMNS = {
    "tools": ["id", "name", "description", "source_type", "source_code", "json_schema", "tags", "organization_id", "tool_type"],
    "block": ["id", "label", "value", "limit", "is_template", "read_only", "organization_id"],
    "sources": ["id", "name", "embedding_config", "organization_id", "vector_db_provider"],
    "files": ["id", "source_id", "organization_id", "file_name", "original_file_name", "file_type",
              "file_size", "processing_status", "total_chunks", "chunks_embedded"],
    "file_contents": ["id", "file_id", "text"],
    "agents": ["id", "name", "agent_type", "system", "message_ids", "llm_config", "embedding_config",
               "organization_id", "message_buffer_autoclear", "timezone"],
    "agents_tags": ["agent_id", "tag"],
    "blocks_agents": ["agent_id", "block_id", "block_label"],
    "tools_agents": ["agent_id", "tool_id"],
    "sources_agents": ["agent_id", "source_id"],
    "files_agents": ["id", "file_id", "agent_id", "source_id", "file_name", "is_open", "visible_content",
                     "organization_id"],
    "runs": ["id", "agent_id", "status", "stop_reason", "organization_id", "completed_at"],
    "steps": ["id", "agent_id", "run_id", "status", "model", "provider_name", "prompt_tokens",
              "completion_tokens", "total_tokens", "organization_id"],
    "messages": ["id", "agent_id", "role", "content", "tool_calls", "tool_call_id", "run_id", "step_id",
                 "organization_id", "model", "created_at"],
    "provider_traces": ["id", "agent_id", "step_id", "request_json", "response_json", "organization_id"],
    "archives": ["id", "name", "embedding_config", "organization_id", "vector_db_provider"],
    "archives_agents": ["agent_id", "archive_id", "is_owner"],
    "archival_passages": ["id", "archive_id", "text", "embedding", "embedding_config", "metadata_", "tags",
                          "organization_id"],
}  # fmt: skip


def _flush_all(writers: dict[str, Writer]) -> None:
    """Flush whole agents only, parents first (``_COLUMNS`` is in foreign-key order)."""
    for writer in writers.values():
        writer.flush()


def _writers(conn: psycopg.Connection) -> dict[str, Writer]:
    return {table: Writer(conn, table, columns) for table, columns in _COLUMNS.items()}


def _tools(writers: dict[str, Writer], rng: random.Random) -> list[str]:
    ids = []
    for name in ("roll_die", "lookup_weather", "send_invoice", "search_notes"):
        tool_id = uid(rng, "tool")
        schema = {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": {}},
        }
        source = f'def {name}() -> str:\n    """{name} tool."""\n    return \'ok\'\n'
        writers["tools"].add(
            tool_id, name, f"{name} tool", "python", source, json.dumps(schema), "[]", ORG, "custom"
        )
        ids.append(tool_id)
    return ids


def _existing_tools(conn: psycopg.Connection) -> list[str]:
    """Part 0's tools, in the order ``_tools`` made them (tool names are unique per organization)."""
    names = ["roll_die", "lookup_weather", "send_invoice", "search_notes"]
    found: dict[str, str] = dict(
        conn.execute("SELECT name, id FROM tools WHERE name = ANY(%s)", (names,)).fetchall()
    )
    return [found[name] for name in names]


def _folders(
    writers: dict[str, Writer], rng: random.Random, scale: Scale, part: int = 0
) -> list[tuple[str, list[tuple[str, str]]]]:
    folders = []
    for index in range(max(1, scale.agents // scale.agents_per_folder // 10)):
        source_id = uid(rng, "source")
        label = f"{index}" if part == 0 else f"{part}-{index}"
        writers["sources"].add(source_id, f"folder-{label}", EMBEDDING_CONFIG, ORG, "NATIVE")
        files = []
        for number in range(scale.files_per_folder):
            file_id = uid(rng, "file")
            name = f"notes-{label}-{number}.txt"
            text = "\n".join(sentence(rng, 12) for _ in range(60))
            writers["files"].add(
                file_id, source_id, ORG, name, name, "text/plain", len(text), "completed", 4, 4
            )
            writers["file_contents"].add(uid(rng, "file_content"), file_id, text)
            files.append((file_id, name))
        folders.append((source_id, files))
    return folders


def _agent(
    writers: dict[str, Writer],
    rng: random.Random,
    scale: Scale,
    index: int,
    tools: list[str],
    shared_blocks: list[str],
    folders: list[tuple[str, list[tuple[str, str]]]],
    pool: list[str],
) -> None:
    agent_id = uid(rng, "agent")
    messages = _messages(writers, rng, scale, agent_id)
    in_context = [messages[0], *messages[-(scale.in_context - 1) :]]
    writers["agents"].add(
        agent_id, f"agent-{index:05d}", "letta_v1_agent", "You are a helpful assistant with memory.",
        json.dumps(in_context), LLM_CONFIG, EMBEDDING_CONFIG, ORG, "false", "UTC",
    )  # fmt: skip
    writers["agents_tags"].add(agent_id, f"team-{index % 20}")
    for label, words in (("persona", 60), ("human", 80)):
        block_id = uid(rng, "block")
        writers["block"].add(block_id, label, sentence(rng, words), 5000, "false", "false", ORG)
        writers["blocks_agents"].add(agent_id, block_id, label)
    if index % scale.agents_per_shared_block == 0:
        shared_blocks.append(uid(rng, "block"))
        writers["block"].add(shared_blocks[-1], "team", sentence(rng, 100), 5000, "false", "false", ORG)
    if shared_blocks:
        writers["blocks_agents"].add(agent_id, shared_blocks[-1], "team")
    for tool_id in tools[: 1 + index % len(tools)]:
        writers["tools_agents"].add(agent_id, tool_id)
    if index % scale.agents_per_folder == 0 and folders:
        source_id, files = folders[(index // scale.agents_per_folder) % len(folders)]
        writers["sources_agents"].add(agent_id, source_id)
        for number, (file_id, name) in enumerate(files):
            writers["files_agents"].add(
                uid(rng, "file_agent"), file_id, agent_id, source_id, name, "true" if number == 0 else "false",
                "1: " + sentence(rng, 20) if number == 0 else None, ORG,
            )  # fmt: skip
    _archive(writers, rng, scale, agent_id, index, pool)


def _messages(writers: dict[str, Writer], rng: random.Random, scale: Scale, agent_id: str) -> list[str]:
    ids = []
    system_id = uid(rng, "message")
    system = (
        "You are a helpful assistant with memory.\n<memory_blocks>\n"
        + sentence(rng, 120)
        + "\n</memory_blocks>"
    )
    writers["messages"].add(
        system_id,
        agent_id,
        "system",
        message_content("system", system),
        "[]",
        None,
        None,
        None,
        ORG,
        None,
        "2026-01-01 00:00:00+00",
    )
    ids.append(system_id)
    turn = 0
    while len(ids) < scale.messages_per_agent:
        turn += 1
        run_id, step_id = uid(rng, "run"), uid(rng, "step")
        writers["runs"].add(run_id, agent_id, "completed", "end_turn", ORG, "2026-01-02 00:00:00")
        writers["steps"].add(
            step_id, agent_id, run_id, "SUCCESS", "gpt-4o-mini", "openai", 1200, 80, 1280, ORG
        )
        stamp = f"2026-01-{1 + turn % 28:02d} {turn % 24:02d}:00:00+00"
        user_text = sentence(rng, rng.randint(8, 60))
        reply = sentence(rng, rng.randint(20, 120))
        call_id = f"call_{rng.getrandbits(64):016x}"
        call = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "send_message", "arguments": json.dumps({"message": reply})},
            }
        ]
        for role, content, calls, call_ref in (
            ("user", message_content("user", user_text), "[]", None),
            ("assistant", message_content("assistant", ""), json.dumps(call), None),
            ("tool", message_content("tool", json.dumps({"status": "OK", "message": None})), "[]", call_id),
            ("assistant", message_content("assistant", reply[:200]), "[]", None),
        ):
            message_id = uid(rng, "message")
            writers["messages"].add(
                message_id,
                agent_id,
                role,
                content,
                calls,
                call_ref,
                run_id,
                step_id,
                ORG,
                "gpt-4o-mini" if role != "user" else None,
                stamp,
            )
            ids.append(message_id)
        if turn % 4 == 0:
            request = json.dumps(
                {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": user_text}] * 6}
            )
            writers["provider_traces"].add(
                uid(rng, "provider_trace"),
                agent_id,
                step_id,
                request,
                json.dumps({"choices": [{"message": {"content": reply}}]}),
                ORG,
            )
    return ids


def _archive(
    writers: dict[str, Writer], rng: random.Random, scale: Scale, agent_id: str, index: int, pool: list[str]
) -> None:
    if not scale.passages_per_agent:
        return
    archive_id = uid(rng, "archive")
    writers["archives"].add(archive_id, f"agent-{index:05d}'s Archive", EMBEDDING_CONFIG, ORG, "NATIVE")
    writers["archives_agents"].add(agent_id, archive_id, "true")
    for _ in range(scale.passages_per_agent):
        writers["archival_passages"].add(
            uid(rng, "passage"), archive_id, sentence(rng, rng.randint(20, 80)), vector_text(rng, pool),
            EMBEDDING_CONFIG, "{}", "[]", ORG,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="a database migrated to Letta 0.16.8's schema")
    parser.add_argument("--agents", type=int, default=Scale.agents)
    parser.add_argument("--messages-per-agent", type=int, default=Scale.messages_per_agent)
    parser.add_argument("--passages-per-agent", type=int, default=Scale.passages_per_agent)
    parser.add_argument("--seed", type=int, default=Scale.seed)
    args = parser.parse_args()
    scale = Scale(args.agents, args.messages_per_agent, args.passages_per_agent, seed=args.seed)
    print(json.dumps(generate(args.dsn, scale), indent=2))


if __name__ == "__main__":
    main()


def iter_scales() -> Iterator[Scale]:  # pragma: no cover - documentation of the presets
    yield Scale(agents=50, messages_per_agent=40, passages_per_agent=2)  # smoke
    yield Scale()  # ~2 GB: 5,000 agents, 1M messages, 40k passages
