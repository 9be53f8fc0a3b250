"""Import and export against the real deployment's database (no server): policies and refusals."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from lifeboat.errors import ValidationFailed
from lifeboat.letta.agent_file_import import Options
from lifeboat.letta.agent_file_validate import DEFAULT_LIMITS, Limits
from lifeboat.letta.secrets import decrypt
from lifeboat.ops.import_af import import_agent_file
from lifeboat.sandbox.deployment import LettaDatabase

from .dbtools import rows, table_hashes
from .samples import rich_document, to_bytes

LIFEBOAT = str(Path(sys.executable).parent / "lifeboat")

ALLOW_CODE = Options(allow_custom_tools=True)  # rich_document carries a custom tool with source code


def write(tmp_path: Path, doc: dict, name: str = "agent.af") -> Path:
    path = tmp_path / name
    path.write_bytes(to_bytes(doc))
    return path


def test_same_named_tool_is_kept_unless_overwrite_is_asked(letta_db: LettaDatabase, tmp_path: Path) -> None:
    doc = rich_document(complete=False)
    doc["tools"][0]["name"] = doc["tools"][0]["json_schema"]["name"] = "lookup_order"  # exists, other code
    doc["tools"][0]["source_code"] = "def lookup_order(order_id: str) -> str:\n    return 'hijacked'\n"
    path = write(tmp_path, doc)
    existing = rows(letta_db.dsn, "SELECT id, source_code FROM tools WHERE name = 'lookup_order'")[0]

    report = import_agent_file(path, letta_db.dsn)
    assert report.id_map["tool-0"] == existing["id"] and "tool-0" in report.reused
    assert any("lookup_order" in w and "--overwrite-tools" in w for w in report.warnings)
    assert rows(letta_db.dsn, "SELECT source_code FROM tools WHERE id = %s", [existing["id"]])[0] == {
        "source_code": existing["source_code"]
    }

    import_agent_file(path, letta_db.dsn, options=Options(overwrite_tools=True, allow_custom_tools=True))
    assert (
        "hijacked"
        in rows(letta_db.dsn, "SELECT source_code FROM tools WHERE id = %s", [existing["id"]])[0][
            "source_code"
        ]
    )


def test_refusals_write_nothing(letta_db: LettaDatabase, tmp_path: Path) -> None:
    before = table_hashes(letta_db.admin_dsn)
    hostile = rich_document()
    hostile["files"][0]["file_name"] = "../../../../etc/passwd"
    with pytest.raises(ValidationFailed, match="looks like a path"):
        import_agent_file(write(tmp_path, hostile), letta_db.dsn)
    with pytest.raises(ValidationFailed, match="larger than 4,096 bytes"):
        import_agent_file(write(tmp_path, rich_document()), letta_db.dsn, limits=Limits(max_bytes=4096))
    with pytest.raises(ValidationFailed, match="organization org-00000000-0000-4000-8000-00000000dead"):
        import_agent_file(
            write(tmp_path, rich_document()),
            letta_db.dsn,
            organization_id="org-00000000-0000-4000-8000-00000000dead",
        )
    report = import_agent_file(write(tmp_path, rich_document()), letta_db.dsn, dry_run=True)
    assert report.dry_run and len(report.agent_ids) == 2
    assert table_hashes(letta_db.admin_dsn) == before


def test_unknown_schema_revision_is_refused(letta_db: LettaDatabase, tmp_path: Path) -> None:
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(ValidationFailed, match="alembic revision ffffffffffff"):
        import_agent_file(write(tmp_path, rich_document()), letta_db.dsn, options=ALLOW_CODE)


@pytest.mark.parametrize("key", [None, "lifeboat-test-encryption-key"])
def test_secrets_are_written_like_letta(
    letta_db: LettaDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    if key:
        monkeypatch.setenv("LETTA_ENCRYPTION_KEY", key)
    else:
        monkeypatch.delenv("LETTA_ENCRYPTION_KEY", raising=False)
    report = import_agent_file(
        write(tmp_path, rich_document()),
        letta_db.dsn,
        options=Options(secrets={"API_TOKEN": "t0k"}, allow_custom_tools=True),
    )
    (row,) = rows(
        letta_db.dsn,
        "SELECT value, value_enc FROM agent_environment_variables WHERE agent_id = %s",
        [report.agent_ids[0]],
    )
    assert row["value"] == ""
    assert (decrypt(row["value_enc"], key) if key else row["value_enc"]) == "t0k"


def test_sleeptime_group_and_links_are_created(letta_db: LettaDatabase, tmp_path: Path) -> None:
    report = import_agent_file(write(tmp_path, rich_document()), letta_db.dsn, options=ALLOW_CODE)
    main, sibling = report.agent_ids
    (group,) = rows(letta_db.dsn, "SELECT * FROM groups WHERE manager_agent_id = %s", [main])
    assert group["manager_type"] == "sleeptime" and group["agent_ids"] == [sibling]
    assert group["turns_counter"] == 3  # restored from the complete extras
    assert rows(letta_db.dsn, "SELECT agent_id FROM groups_agents WHERE group_id = %s", [group["id"]]) == [
        {"agent_id": sibling}
    ]
    labels = rows(
        letta_db.dsn, "SELECT block_label FROM blocks_agents WHERE agent_id = %s ORDER BY 1", [sibling]
    )
    assert [r["block_label"] for r in labels] == ["human", "team"]
    (agent,) = rows(letta_db.dsn, "SELECT message_ids, enable_sleeptime FROM agents WHERE id = %s", [main])
    assert agent["enable_sleeptime"] is True and len(agent["message_ids"]) == 3
    sequence = rows(
        letta_db.dsn,
        "SELECT id FROM messages WHERE agent_id = %s AND conversation_id IS NULL ORDER BY sequence_id",
        [main],
    )
    assert [r["id"] for r in sequence] == [report.id_map[f"message-{n}"] for n in range(5)]


def test_cli_export_all_and_import(letta_db: LettaDatabase, tmp_path: Path) -> None:
    out = tmp_path / "agents"
    result = subprocess.run(
        [LIFEBOAT, "--json", "export", "--all", "--db", letta_db.dsn, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    files = sorted(out.iterdir())
    agents = letta_db.facts["agents"]
    assert len(files) == len(agents) - 1  # the sleeptime sibling rides with its manager
    assert sum(len(f["agent_ids"]) for f in summary["files"]) == len(agents)
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    sleeptime = letta_db.facts["sleeptime"]
    with_sibling = out / f"{sleeptime['agent_id']}.af"
    assert [a["name"] for a in json.loads(with_sibling.read_text())["agents"]] == [
        sleeptime["agent_name"],
        sleeptime["sibling_name"],
    ]
    result = subprocess.run(
        [LIFEBOAT, "--json", "import", str(with_sibling), "--db", letta_db.dsn, "--name", "restored"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["id_map"]["agent-0"] == report["agent_ids"][0]
    assert rows(letta_db.dsn, "SELECT name FROM agents WHERE id = %s", [report["agent_ids"][0]]) == [
        {"name": "restored"}
    ]


def test_cli_validation_failure_exit_code(letta_db: LettaDatabase, tmp_path: Path) -> None:
    doc = rich_document()
    doc["agents"][0]["in_context_message_ids"].append("message-77")
    result = subprocess.run(
        [LIFEBOAT, "import", str(write(tmp_path, doc)), "--db", letta_db.dsn],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 6 and "message-77" in result.stderr and "Traceback" not in result.stderr
    assert DEFAULT_LIMITS.max_bytes == 256 * 1024 * 1024


def test_new_code_bearing_tools_need_allow_custom_tools(letta_db: LettaDatabase, tmp_path: Path) -> None:
    """Issue 12 item 7: a valid file does not install code Letta runs on its host unless asked."""
    doc = rich_document()
    doc["tools"][0]["pip_requirements"] = [{"name": "requests", "version": "2.32.3"}]
    path = write(tmp_path, doc)
    before = table_hashes(letta_db.admin_dsn)

    with pytest.raises(ValidationFailed, match=r"tool 'lookup' \(create\).*--allow-custom-tools") as refused:
        import_agent_file(path, letta_db.dsn)
    assert any("pip: requests==2.32.3" in problem for problem in refused.value.problems)
    plan = import_agent_file(path, letta_db.dsn, dry_run=True)  # the plan lists them
    assert [(t["name"], t["action"], t["source_lines"]) for t in plan.custom_tools] == [
        ("lookup", "create", 2)
    ]
    assert any("--allow-custom-tools" in warning for warning in plan.warnings)
    cli = subprocess.run(
        [LIFEBOAT, "import", str(path), "--db", letta_db.dsn], capture_output=True, text=True, timeout=120
    )
    assert cli.returncode == 6 and "--allow-custom-tools" in cli.stderr and "Traceback" not in cli.stderr
    assert table_hashes(letta_db.admin_dsn) == before  # nothing was written

    allowed = subprocess.run(
        [LIFEBOAT, "--json", "import", str(path), "--db", letta_db.dsn, "--allow-custom-tools"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert [t["name"] for t in json.loads(allowed.stdout)["custom_tools"]] == ["lookup"]
    assert rows(letta_db.dsn, "SELECT pip_requirements FROM tools WHERE name = 'lookup'") == [
        {"pip_requirements": [{"name": "requests", "version": "2.32.3"}]}
    ]


def test_only_tools_with_code_count_as_custom() -> None:
    from lifeboat.letta.agent_file import ToolEntry
    from lifeboat.letta.agent_file_import import custom_tool

    assert custom_tool(ToolEntry(id="tool-1", name="send_message", tool_type="letta_core"), "create") is None
    empty = ToolEntry(id="tool-2", name="x", source_code="  \n", pip_requirements=[], npm_requirements=[])
    assert custom_tool(empty, "create") is None
    npm = ToolEntry(id="tool-3", name="y", npm_requirements=[{"name": "left-pad"}])
    assert custom_tool(npm, "overwrite") is not None
