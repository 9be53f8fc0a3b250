"""`lifeboat demo` on the cached deployment."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lifeboat.cli import full_app
from lifeboat.ops.demo import PHASES, run_demo


def test_run_demo_catalogs_the_deployment(letta_deployment: dict[str, object]) -> None:
    seen: list[str] = []
    result = run_demo(on_phase=seen.append)
    assert seen == [name for name, _ in PHASES] == list(result.timings)
    assert len(result.agents) == len(letta_deployment["agents"])  # type: ignore[arg-type]
    statuses = {agent.name: agent.last_run_status for agent in result.agents}
    assert {statuses[c["agent_name"]] for c in result.facts["crashed"]} <= {"created", "running"}
    assert all(agent.messages > 0 for agent in result.agents)


def test_demo_cli_json(letta_deployment: dict[str, object]) -> None:
    outcome = CliRunner().invoke(full_app(), ["--json", "demo"])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout[outcome.stdout.index("{") :])
    assert payload["flavor"] in ("pg18", "pg16") and len(payload["agents"]) >= 20
