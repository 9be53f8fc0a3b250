"""Validation without a database: hostile and broken agent files give every problem, one line each."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.errors import ValidationFailed
from lifeboat.letta.agent_file_validate import Limits, path_problem, validate_bytes

from .samples import rich_document, to_bytes


def rejected(data: bytes, limits: Limits | None = None) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        validate_bytes(data, limits) if limits else validate_bytes(data)
    error = info.value
    assert "\n" not in str(error) and error.problems
    assert all("\n" not in problem for problem in error.problems)
    assert error.exit_code == 6
    return error


@pytest.mark.parametrize("complete", [True, False])
def test_rich_document_is_valid(complete: bool) -> None:
    doc = validate_bytes(to_bytes(rich_document(complete=complete)))
    assert [a.name for a in doc.agents] == ["helper", "helper-sleeptime"]
    assert (doc.lifeboat is not None) is complete


def test_double_encoded_json_is_accepted_like_letta() -> None:
    validate_bytes(json.dumps(json.dumps(rich_document())).encode())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe{", "not UTF-8"),
        (b"[1, 2]", "top level must be a JSON object"),
        (b'{"name": "legacy v1 agent", "core_memory": []}', "no 'agents' list"),
        (b"[" * 200_000 + b"]" * 200_000, "nested"),
        (b'{"agents": [], "x": NaN}', "not valid JSON"),
        (b'{"agents": [], "x": 1e999}', "out of range"),
        (b'{"agents": [], "x": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"agents": [], "x": "a\\u0000b"}', "NUL"),
        (b'{"agents": [], "x": "\\ud800"}', "surrogate"),
        (b'{"agents": [], "\\u0000": 1}', "NUL"),
    ],
)
def test_hostile_bytes(data: bytes, expected: str) -> None:
    assert expected in str(rejected(data))


def test_oversized_input_is_refused_before_parsing() -> None:
    error = rejected(to_bytes(rich_document()), Limits(max_bytes=1000))
    assert "limit is 1,000" in str(error)


def test_deep_but_parseable_nesting_is_refused() -> None:
    doc = rich_document()
    deep: object = "x"
    for _ in range(200):
        deep = {"a": deep}
    doc["agents"][0]["metadata"] = deep
    assert "nested deeper" in str(rejected(to_bytes(doc)))


PATH_NAMES = ["../x", "/etc/passwd", "a/b/c", "..", "C:evil", "~root", "a\\b", "tab\there", "", "x" * 300]


@pytest.mark.parametrize("name", PATH_NAMES)
def test_path_like_names_are_refused(name: str) -> None:
    assert path_problem(name, what="name") is not None


def test_source_slash_file_is_a_valid_file_name() -> None:
    assert path_problem("handbook/rules.txt", what="file_name", slashes=1) is None
    assert path_problem("handbook/../rules.txt", what="file_name", slashes=1) is not None


def test_every_path_like_name_is_reported_at_once() -> None:
    doc = rich_document()
    doc["agents"][0]["name"] = "../../etc/cron.d/x"
    doc["blocks"][0]["label"] = "human\n"
    doc["tools"][0]["name"] = "../lookup"
    doc["sources"][0]["name"] = "a/b"
    doc["files"][0]["file_name"] = "/etc/passwd"
    doc["files"][0]["original_file_name"] = "../rules.txt"
    doc["agents"][0]["files_agents"][0]["file_name"] = "handbook/../../x"
    doc["skills"] = [{"name": "s", "files": {"../../SKILL.md": "x"}}]
    doc["agents"][0]["secrets"] = {"A/B": ""}
    problems = rejected(to_bytes(doc)).problems
    text = "\n".join(problems)
    for where in (
        "agents[0].name",
        "blocks[0].label",
        "tools[0].name",
        "sources[0].name",
        "files[0].file_name",
        "files[0].original_file_name",
        "files_agents[0].file_name",
        "skills[0].files key",
        "secrets key",
    ):
        assert where in text, where


def test_agent_names_follow_letta_rules() -> None:
    doc = rich_document()
    doc["agents"][0]["name"] = "helper; DROP TABLE agents"
    assert "may only hold letters" in str(rejected(to_bytes(doc)))


def test_every_broken_reference_is_listed() -> None:
    doc = rich_document()
    agent = doc["agents"][0]
    agent["tool_ids"].append("tool-7")
    agent["block_ids"].append("block-9")
    agent["source_ids"] = ["source-4"]
    agent["in_context_message_ids"].append("message-99")
    agent["group_ids"] = ["group-3"]
    agent["files_agents"][0]["file_id"] = "file-5"
    doc["groups"][0]["agent_ids"] = ["agent-8"]
    doc["groups"][0]["manager_config"]["manager_agent_id"] = "agent-9"
    doc["files"][0]["source_id"] = "source-6"
    doc["lifeboat"]["passages"][0]["archive_id"] = "archive-5"
    doc["lifeboat"]["identities"][0]["block_ids"] = ["block-8"]
    error = rejected(to_bytes(doc))
    expected = [
        "tool-7",
        "block-9",
        "source-4",
        "message-99",
        "group-3",
        "file-5",
        "agent-8",
        "agent-9",
        "source-6",
        "archive-5",
        "block-8",
    ]
    text = "\n".join(error.problems)
    for ref in expected:
        assert ref in text, ref
    assert len(error.problems) >= len(expected)


def test_ids_must_be_file_local_and_unique() -> None:
    doc = rich_document()
    doc["blocks"][1]["id"] = "block-0"
    doc["tools"][0]["id"] = "tool-01"
    doc["agents"][0]["messages"][1]["id"] = "message- 1"
    text = "\n".join(rejected(to_bytes(doc)).problems)
    assert "'block-0' is used by 2" in text
    assert "'tool-01' is not of the form" in text
    assert "'message- 1' is not of the form" in text


def test_schema_errors_name_their_path() -> None:
    doc = rich_document()
    doc["agents"][0]["llm_config"]["context_window"] = "big"
    doc["agents"][0]["messages"][2]["tool_calls"] = [{"id": "c", "type": "function"}]
    doc["agents"][0]["tool_rules"] = [{"tool_name": "x", "type": "conditional"}]
    doc["blocks"][0]["limit"] = -5
    text = "\n".join(rejected(to_bytes(doc)).problems)
    assert "agents[0].llm_config" in text and "context_window" in text
    assert "agents[0].messages[2].tool_calls" in text
    assert "agents[0].tool_rules" in text
    assert "blocks[0].limit" in text


def test_one_label_per_agent_and_system_message_first() -> None:
    doc = rich_document()
    doc["blocks"][1]["label"] = "human"
    doc["agents"][0]["in_context_message_ids"] = ["message-4", "message-0"]
    text = "\n".join(rejected(to_bytes(doc)).problems)
    assert "share the label 'human'" in text
    assert "first message must be the system message" in text


def test_bad_embeddings_are_refused() -> None:
    doc = rich_document()
    doc["lifeboat"]["passages"][0]["embedding"] = "not base64!"
    doc["lifeboat"]["source_passages"][0]["embedding"] = "AAAA" * 6000
    text = "\n".join(rejected(to_bytes(doc)).problems)
    assert "not base64" in text and "at most 4096" in text


def test_problem_list_is_bounded() -> None:
    doc = rich_document()
    doc["agents"][0]["tool_ids"] = [f"tool-{n}" for n in range(2, 5000)]
    error = rejected(to_bytes(doc))
    assert len(error.problems) <= 201 and error.problems[-1].startswith("... and")


def test_cli_reports_problems_with_exit_code_6(tmp_path: Path) -> None:
    doc = copy.deepcopy(rich_document())
    doc["agents"][0]["name"] = "../evil"
    doc["agents"][0]["tool_ids"].append("tool-9")
    path = tmp_path / "bad.af"
    path.write_bytes(to_bytes(doc))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "lifeboat"),
            "import",
            str(path),
            "--db",
            "postgresql://nobody@127.0.0.1:1/none",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    assert "looks like a path" in result.stderr and "tool-9" in result.stderr


def test_unknown_exporting_revision_is_refused() -> None:
    doc = rich_document()
    doc["metadata"]["revision_id"] = "0123456789ab"
    assert "not the alembic head of any known Letta release" in str(rejected(to_bytes(doc)))
    for known in ("unknown", "614c4e53b66e"):  # Letta's fallback, and 0.8.0's head
        doc["metadata"]["revision_id"] = known
        validate_bytes(to_bytes(doc))
