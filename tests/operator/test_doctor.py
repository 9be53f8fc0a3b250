"""doctor: all green next to a healthy deployment, and each problem is detected by its own check."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from operator_testing import PASSPHRASE, add_snapshot, cli, make_small_db, rows, small_repo

from lifeboat.ops.backup import run_backup
from lifeboat.ops.doctor import DoctorInputs, DoctorReport, run_doctor
from lifeboat.sandbox.postgres import Cluster, free_port
from lifeboat.settings import RedisTarget


def _failing(report: DoctorReport) -> set[str]:
    return {check.name for check in report.checks if check.status.value == "fail"}


def _status(report: DoctorReport) -> dict[str, str]:
    return {check.name: check.status.value for check in report.checks}


def test_doctor_is_green_next_to_the_real_deployment(letta_db, redis_server, tmp_path: Path) -> None:
    repo = small_repo(tmp_path / "repo")
    run_backup(repo, letta_db.dsn)  # as role letta, like LETTA_PG_URI
    inputs = DoctorInputs(
        dsn=letta_db.dsn,
        repository=repo.backend.url,
        passphrase=PASSPHRASE,
        redis=RedisTarget("127.0.0.1", redis_server.port),
    )
    report = run_doctor(inputs)
    status = _status(report)
    assert report.ok, [c for c in report.checks if c.status.value == "fail"]
    for name in ("database", "database.version", "database.backup_privileges", "database.pgvector"):
        assert status[name] == "ok", name
    assert status["letta.revision"] == "ok" and "0.16.8" in next(
        c.message for c in report.checks if c.name == "letta.revision"
    )
    assert (
        status["redis"]
        == status["repository"]
        == status["repository.locks"]
        == status["rpo"]
        == status["disk"]
        == "ok"
    )
    # role letta has no CREATEDB: restoring as it would fail, which doctor says without failing
    assert status["database.restore_privileges"] == "warn"
    admin = run_doctor(replace(inputs, target_dsn=letta_db.admin_dsn))
    assert _status(admin)["database.restore_privileges"] == "ok"


@pytest.fixture
def healthy(pg_cluster: Cluster, tmp_path: Path) -> Callable[..., DoctorInputs]:
    """``make(**db_options)`` → inputs for a small healthy deployment with a fresh snapshot."""
    repo = small_repo(tmp_path / "repo")
    add_snapshot(repo, rows(50, seed=1))

    def make(**db_options: object) -> DoctorInputs:
        dsn = make_small_db(pg_cluster, f"doctor_{uuid.uuid4().hex[:8]}", **db_options)  # type: ignore[arg-type]
        return DoctorInputs(dsn=dsn, repository=repo.backend.url, passphrase=PASSPHRASE)

    return make


def test_the_healthy_baseline_passes(healthy: Callable[..., DoctorInputs]) -> None:
    report = run_doctor(healthy())
    assert report.ok and _failing(report) == set()


def test_wrong_passphrase(healthy: Callable[..., DoctorInputs]) -> None:
    report = run_doctor(replace(healthy(), passphrase="not the passphrase"))
    assert _failing(report) == {"repository"}
    check = next(c for c in report.checks if c.name == "repository")
    assert "wrong passphrase" in check.message and "LIFEBOAT_PASSWORD" in (check.hint or "")


def test_missing_pgvector(healthy: Callable[..., DoctorInputs]) -> None:
    report = run_doctor(healthy(vector=False))
    assert _failing(report) == {"database.pgvector"}
    assert "CREATE EXTENSION vector WITH SCHEMA letta" in (
        report.checks[[c.name for c in report.checks].index("database.pgvector")].hint or ""
    )


def test_pgvector_in_the_wrong_schema(healthy: Callable[..., DoctorInputs]) -> None:
    inputs = healthy(vector=False)
    assert inputs.dsn is not None
    with psycopg.connect(inputs.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA ext")
        conn.execute("CREATE EXTENSION vector WITH SCHEMA ext")
    report = run_doctor(inputs)
    assert _failing(report) == {"database.pgvector"}
    assert "ALTER EXTENSION vector SET SCHEMA letta" in (
        next(c for c in report.checks if c.name == "database.pgvector").hint or ""
    )


def test_unknown_letta_revision(healthy: Callable[..., DoctorInputs]) -> None:
    report = run_doctor(healthy(revision="ffffffffffff"))
    assert _failing(report) == {"letta.revision"}
    assert "ffffffffffff" in next(c.message for c in report.checks if c.name == "letta.revision")


def test_unreachable_redis(healthy: Callable[..., DoctorInputs]) -> None:
    report = run_doctor(replace(healthy(), redis=RedisTarget("127.0.0.1", free_port())))
    assert _failing(report) == {"redis"}


def test_stale_newest_snapshot(healthy: Callable[..., DoctorInputs]) -> None:
    inputs = healthy()
    later = datetime.now(UTC) + timedelta(days=3)
    report = run_doctor(inputs, now=later)
    assert _failing(report) == {"rpo"}
    rpo = next(c for c in report.checks if c.name == "rpo")
    assert "3d old (threshold 26h)" in rpo.message and rpo.details["age_seconds"] > 3 * 86400 - 60
    assert run_doctor(replace(inputs, max_age=timedelta(days=4)), now=later).ok


def test_insufficient_privileges(healthy: Callable[..., DoctorInputs], pg_cluster: Cluster) -> None:
    inputs = healthy()
    assert inputs.dsn is not None
    dbname = inputs.dsn.rsplit("/", 1)[1]
    with psycopg.connect(inputs.dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'weak'").fetchone() is None:
            conn.execute("CREATE ROLE weak LOGIN PASSWORD 'weak' NOCREATEDB")
        conn.execute("GRANT USAGE ON SCHEMA letta TO weak")
        conn.execute("GRANT SELECT ON letta.agents, letta.block, letta.alembic_version TO weak")
    weak = pg_cluster.dsn(dbname, "weak", "weak")
    report = run_doctor(replace(inputs, dsn=weak, target_dsn=weak))
    assert _failing(report) == {"database.backup_privileges", "database.restore_privileges"}
    backup = next(c for c in report.checks if c.name == "database.backup_privileges")
    assert backup.details["unreadable"] == ["messages"]
    restore = next(c for c in report.checks if c.name == "database.restore_privileges")
    assert "CREATEDB" in restore.message and "CREATE EXTENSION vector" in restore.message


def test_doctor_cli_prints_one_line_per_check_and_exits_3(healthy: Callable[..., DoctorInputs]) -> None:
    inputs = healthy(vector=False)
    env = {"LETTA_PG_URI": str(inputs.dsn), "LIFEBOAT_REPOSITORY": str(inputs.repository)}
    human = cli("doctor", env=env)
    assert human.returncode == 3
    lines = human.stdout.splitlines()
    assert any(line.split()[:2] == ["fail", "database.pgvector"] for line in lines)
    assert any("fix:" in line and "CREATE EXTENSION vector" in line for line in lines)
    assert "doctor: 1 check(s) failed: database.pgvector" in human.stderr
    machine = cli("doctor", "--json", env=env)
    assert machine.returncode == 3
    report = json.loads(machine.stdout)
    assert report["format"] == "lifeboat.doctor/1" and report["ok"] is False
    assert {c["name"] for c in report["checks"]} >= {
        "database",
        "database.pgvector",
        "repository",
        "rpo",
        "disk",
    }
