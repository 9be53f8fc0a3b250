"""The local-backend writer on a small synthetic agent: paths, records, transcript, memory repo."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
from lc_samples import AGENT_ID, DEEP_WORD, agent

from lifeboat.letta_code import layout, transcript, writer


def test_ids_and_paths_follow_letta_codes_encoding() -> None:
    local = layout.local_agent_id(AGENT_ID)
    assert local == "agent-local-11111111-2222-4333-8444-555555555555"
    assert (
        layout.encode_segment("default:" + local)
        == "ZGVmYXVsdDphZ2VudC1sb2NhbC0xMTExMTExMS0yMjIyLTQzMzMtODQ0NC01NTU1NTU1NTU1NTU"
    )
    assert layout.agent_record_path(local) == f"agents/{layout.encode_segment(local)}.json"
    assert layout.memfs_dir(local) == f"memfs/{local}/memory"


def test_model_mapping() -> None:
    assert layout.model_handle(
        {"model": "gpt-4o", "model_endpoint_type": "openai", "model_endpoint": "https://api.openai.com/v1"}
    ) == ("openai/gpt-4o", None)
    handle, note = layout.model_handle(
        {"model": "m", "model_endpoint_type": "openai", "model_endpoint": "http://llm.local/v1"}
    )
    assert handle == "openai-compatible/m" and note is not None and "http://llm.local/v1" in note
    assert (
        layout.model_handle({"model": "claude", "model_endpoint_type": "anthropic"})[0] == "anthropic/claude"
    )
    handle, note = layout.model_handle({"model": "x", "model_endpoint_type": "mystery"})
    assert handle == layout.PLACEHOLDER_MODEL and note


def test_timestamps_are_letta_codes_iso_form() -> None:
    assert transcript.iso("2026-11-01 10:00:05.123456+00") == "2026-11-01T10:00:05.123Z"
    assert transcript.iso("2026-11-01T12:00:05+02:00") == "2026-11-01T10:00:05.000Z"


def test_build_writes_record_transcripts_and_memory(tmp_path: Path) -> None:
    source = agent()
    out = writer.build_agent(source, tmp_path)
    record = json.loads((tmp_path / layout.agent_record_path(out.id)).read_text())
    assert record["name"] == "sample-agent" and record["system"] == "You are a sample agent."
    assert record["model"] == "openai/gpt-4o-mini"
    assert record["model_settings"]["context_window_limit"] == 32000
    default, named = out.conversations
    # every non-system row is one entry; the system row is left out
    assert default.entries == default.messages_in - 1 and default.system_left_out == 1
    folder = tmp_path / default.path
    rows = [json.loads(line) for line in (folder / "messages.jsonl").read_text().splitlines()]
    assert rows[0]["type"] == "session"
    messages = [row["message"] for row in rows[1:]]
    assert [m["id"] for m in messages] == [m.id for m in source.conversations[0].messages[1:]]
    assert all(rows[i + 1]["parentId"] == rows[i]["id"] for i in range(1, len(rows) - 1))
    assert DEEP_WORD in messages[2]["content"][0]["text"]
    call = messages[3]
    assert call["role"] == "assistant" and call["content"][0] == {
        "type": "thinking",
        "thinking": "thinking it over",
    }
    assert call["content"][1]["type"] == "toolCall" and call["content"][1]["arguments"] == {
        "label": "human",
        "new_string": "x",
    }
    assert messages[4]["role"] == "toolResult" and messages[4]["toolCallId"] == "call_1"
    conversation = json.loads((folder / "conversation.json").read_text())
    assert conversation["in_context_message_ids"] == [m.id for m in source.conversations[0].messages[-6:]]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["schema_version"], manifest["message_format"]) == (2, "pi-session-entry-jsonl")
    assert named.id.startswith("conv-") and named.entries == 2
    repo = pygit2.Repository(str(tmp_path / layout.memfs_dir(out.id)))
    head = repo.head.peel(pygit2.Commit)
    assert head.parents == [] and repo.head.shorthand == "main"
    names = {entry.name for entry in head.tree}
    assert {"MEMORY.md", "persona.md", "human.md", "archival", "files", "skills"} <= names
    persona = (tmp_path / layout.memfs_dir(out.id) / "persona.md").read_text()
    assert persona.startswith("---\nname: persona\ndescription: Who I am\n---\nI am the sample persona.")
    index = (tmp_path / layout.memfs_dir(out.id) / "MEMORY.md").read_text()
    assert not index.startswith("---") and "shared in V1 with other-agent" in index


def test_same_input_same_bytes_and_commit(tmp_path: Path) -> None:
    first = writer.build_agent(agent(), tmp_path / "a")
    second = writer.build_agent(agent(), tmp_path / "b")
    assert first.commit == second.commit
    assert writer.existing_state(tmp_path / "a", second, tmp_path / "b") == "same"
    changed = agent()
    changed.blocks[0].value = "edited"
    third = writer.build_agent(changed, tmp_path / "c")
    assert writer.existing_state(tmp_path / "a", third, tmp_path / "c") == "different"
    assert writer.existing_state(tmp_path / "empty", third, tmp_path / "c") == "new"
