"""The verify and reconcile commands: exit codes and --json output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support import run_main

from lifeboat.cli import output
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import free_port

LIFEBOAT = Path(sys.executable).with_name("lifeboat")


@pytest.fixture(autouse=True)
def _human_output_again() -> Iterator[None]:
    yield
    output.set_json(False)


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``lifeboat ARGS`` in process through the real entry point (errors → exit codes)."""
    monkeypatch.delenv("LETTA_REDIS_HOST", raising=False)
    return run_main(capsys, *args)


def test_verify_clean_exits_0_and_json_parses(
    letta_db: LettaDatabase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "verify", "--db", letta_db.dsn)
    assert code == 0
    assert "OK" in out and "runs.in_flight" in out

    code, out, _ = run_cli(monkeypatch, capsys, "verify", "--db", letta_db.dsn, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["format"] == "lifeboat.verify/1" and report["ok"] is True
    assert report["summary"]["error"] == 0
    assert {f["check"] for f in report["findings"]} >= {"runs.in_flight", "steps.pending"}


def _break(letta_db: LettaDatabase) -> str:
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        agent_id: Any = conn.execute("SELECT id FROM agents ORDER BY id LIMIT 1").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "UPDATE agents SET message_ids = (message_ids::jsonb || '[\"message-gone\"]'::jsonb)::json WHERE id = %s",
            (agent_id,),
        )
    return str(agent_id)


def test_verify_errors_exit_3_with_json_report_and_one_line_error(
    letta_db: LettaDatabase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_id = _break(letta_db)
    code, out, err = run_cli(monkeypatch, capsys, "verify", "--db", letta_db.dsn, "--json")
    assert code == 3
    report = json.loads(out)
    assert report["ok"] is False
    [finding] = [f for f in report["findings"] if f["severity"] == "error"]
    assert finding["check"] == "message_ids.dangling" and finding["ids"] == [agent_id]
    assert finding["related"] == ["message-gone"]
    assert json.loads(err.strip().splitlines()[-1])["exit_code"] == 3

    code, out, err = run_cli(monkeypatch, capsys, "verify", "--db", letta_db.dsn)
    assert code == 3 and "FAILED" in out and "message_ids.dangling" in out


def test_reconcile_dry_run_then_apply(
    letta_db: LettaDatabase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed = {c["run_id"] for c in letta_db.facts["crashed"]}
    code, out, _ = run_cli(
        monkeypatch, capsys, "reconcile", "--db", letta_db.dsn, "--server-stopped", "--json"
    )
    dry = json.loads(out)
    assert code == 0 and dry["format"] == "lifeboat.reconcile/1" and dry["applied"] is False
    assert {c["id"] for c in dry["planned"] if c["repair"] == "runs.fail_stale"} == crashed
    assert dry["changed"] == []

    code, out, _ = run_cli(
        monkeypatch, capsys, "reconcile", "--db", letta_db.dsn, "--server-stopped", "--apply"
    )
    assert code == 0 and "4 changed" in out

    code, out, _ = run_cli(
        monkeypatch, capsys, "reconcile", "--db", letta_db.dsn, "--older-than", "0", "--json"
    )
    assert json.loads(out)["planned"] == []


def test_usage_and_connection_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "verify", "--check", "nonsense")
    assert code == 2 and "nonsense" in err
    code, _, _ = run_cli(monkeypatch, capsys, "reconcile", "--older-than", "soon")
    assert code == 2
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/letta"
    code, _, err = run_cli(monkeypatch, capsys, "verify", "--db", unreachable)
    assert code == 4 and "cannot connect" in err


def test_console_script_exit_code(letta_db: LettaDatabase) -> None:
    _break(letta_db)
    done = subprocess.run(
        [str(LIFEBOAT), "verify", "--db", letta_db.dsn, "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3
    assert json.loads(done.stdout)["summary"]["error"] == 1


def test_verify_against_exit_codes_and_json(
    letta_db: LettaDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lifeboat.ops.backup import run_backup
    from lifeboat.repo.kdf import KdfParams
    from lifeboat.repo.repository import Repository

    kdf = KdfParams(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    repo = Repository.init(tmp_path / "repo", "pass", kdf=kdf)
    run_backup(repo, letta_db.admin_dsn)
    monkeypatch.setenv("LIFEBOAT_PASSWORD", "pass")
    base = ("verify", "--db", letta_db.dsn, "--repo", str(tmp_path / "repo"), "--against", "latest")

    code, out, _ = run_cli(monkeypatch, capsys, *base, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["format"] == "lifeboat.verify_against/1" and document["equal"] is True

    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM agents_tags WHERE agent_id = %s", (letta_db.facts["agent_ids"]["lb-agent-04"],)
        )
    code, out, _ = run_cli(monkeypatch, capsys, *base)
    assert code == 3
    assert "DIFFERS" in out and "agents_tags" in out

    code, _, err = run_cli(monkeypatch, capsys, "verify", "--db", letta_db.dsn, "--since-snapshot")
    assert code == 2 and "--against" in err
