"""Standalone checks against what real tools and the real server leave behind."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lifeboat.letta import vocabularies
from lifeboat.letta.checks import Severity
from lifeboat.letta.repairs import RepairOptions
from lifeboat.ops.reconcile import reconcile_database
from lifeboat.ops.verify import verify_database
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.letta_env import ensure_letta_env

_READ_VOCABULARIES = """
import json
from letta.schemas import enums
from letta.schemas.letta_stop_reason import StopReasonType
from letta.schemas.group import ManagerType
from letta.schemas.identity import IdentityType
from letta.orm.mcp_oauth import OAuthSessionStatus
found = dict(AGENT_TYPES=enums.AgentType, STOP_REASONS=StopReasonType, MANAGER_TYPES=ManagerType,
    IDENTITY_TYPES=IdentityType, TOOL_TYPES=enums.ToolType, TOOL_SOURCE_TYPES=enums.ToolSourceType,
    MCP_SERVER_TYPES=enums.MCPServerType, PROVIDER_CATEGORIES=enums.ProviderCategory,
    JOB_STATUSES=enums.JobStatus, JOB_TYPES=enums.JobType, RUN_STATUSES=enums.RunStatus,
    BATCH_STEP_STATUSES=enums.AgentStepStatus, FILE_STATUSES=enums.FileProcessingStatus,
    ACTOR_TYPES=enums.ActorType, OAUTH_STATUSES=OAuthSessionStatus, MESSAGE_ROLES=enums.MessageRole)
print(json.dumps({name: [member.value for member in enum] for name, enum in found.items()}))
"""


def test_vocabularies_are_the_real_letta_enums() -> None:
    env = ensure_letta_env()
    out = subprocess.run(
        [str(env.python), "-c", _READ_VOCABULARIES], check=True, capture_output=True, text=True, timeout=300
    ).stdout
    for name, values in json.loads(out.strip().splitlines()[-1]).items():
        assert tuple(values) == getattr(vocabularies, name), name


def test_plain_pg_dump_and_pg_restore_into_a_new_database_is_unusable(
    letta_db: LettaDatabase, tmp_path: Path
) -> None:
    """pg_dump without --create, createdb, pg_restore — none of init.sql's database-level steps."""
    cluster = letta_db.cluster
    dump = tmp_path / "plain.dump"
    subprocess.run(
        [cluster.tool("pg_dump"), "--format=custom", "--file", str(dump), "--dbname", letta_db.admin_dsn],
        check=True,
        capture_output=True,
    )
    target = f"{letta_db.dbname}_plain"
    cluster.create_database(target)
    try:
        subprocess.run(
            [cluster.tool("pg_restore"), "--exit-on-error", "--dbname", cluster.dsn(target), str(dump)],
            check=True,
            capture_output=True,
        )
        report = verify_database(cluster.dsn(target, "letta", "letta"))
    finally:
        cluster.drop_database(target)
    assert not report.ok
    assert report.codes(Severity.ERROR) == {"schema.database_search_path"}


def test_restore_as_superuser_without_owners_is_unusable(letta_db: LettaDatabase, tmp_path: Path) -> None:
    cluster = letta_db.cluster
    dump = tmp_path / "plain.dump"
    subprocess.run(
        [cluster.tool("pg_dump"), "--format=custom", "--file", str(dump), "--dbname", letta_db.admin_dsn],
        check=True,
        capture_output=True,
    )
    target = f"{letta_db.dbname}_noowner"
    cluster.create_database(target)
    try:
        subprocess.run(
            [cluster.tool("pg_restore"), "--no-owner", "--dbname", cluster.dsn(target), str(dump)],
            check=True,
            capture_output=True,
        )
        with psycopg.connect(cluster.dsn(target), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{target}" SET search_path TO letta')
        report = verify_database(cluster.dsn(target, "letta", "letta"))
    finally:
        cluster.drop_database(target)
    assert not report.ok
    assert "schema.privileges" in report.codes(Severity.ERROR)


@pytest.mark.letta_server
def test_a_deployment_the_real_server_built_has_no_warnings(
    letta_db: LettaDatabase, letta_server: Callable[..., Any]
) -> None:
    """The cached deployment (its crash leftovers reconciled) plus an agent file imported by the
    server itself, whose file Letta re-embeds (chunks_embedded stays 0 on that path)."""
    reconcile_database(letta_db.dsn, apply=True, options=RepairOptions(server_stopped=True))
    server = letta_server(letta_db.dsn)
    exported = server.client.get(f"/v1/agents/{letta_db.facts['agent_ids']['lb-agent-00']}/export").content
    response = server.client.post(
        "/v1/agents/import", files={"file": ("agent.af", exported, "application/json")}, data={"name": "copy"}
    )
    assert response.status_code == 200, response.text[:300]
    deadline = time.monotonic() + 180
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        while True:
            pending = conn.execute(
                "SELECT count(*) FROM files WHERE processing_status <> 'completed'"
            ).fetchone()
            imported = conn.execute("SELECT count(*) FROM files").fetchone()
            assert pending is not None and imported is not None
            if pending[0] == 0 and imported[0] == 2:
                break
            assert time.monotonic() < deadline, "the imported file was not embedded in time"
            time.sleep(1)
        chunks = conn.execute("SELECT chunks_embedded FROM files ORDER BY created_at").fetchall()
    server.stop()
    assert chunks[-1][0] in (0, None)  # what Letta records for an imported file

    report = verify_database(letta_db.dsn)

    assert report.codes(Severity.ERROR) == set() and report.codes(Severity.WARNING) == set(), [
        f.model_dump() for f in report.findings if f.severity is not Severity.INFO
    ]


def test_letta_in_public_with_the_default_search_path_is_fine(letta_db: LettaDatabase) -> None:
    """Without init.sql people point Letta at a plain database: tables in ``public``, which the
    built-in search_path names for every role."""
    with psycopg.connect(letta_db.admin_dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{letta_db.dbname}" RESET search_path')
        conn.execute("ALTER SCHEMA letta RENAME TO public")
    report = verify_database(letta_db.dsn)
    assert report.letta_schema == "public"
    assert report.ok, [f.model_dump() for f in report.errors()]
