"""Only libpq's PG* variables set: lifeboat reaches the database exactly as psql would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from psycopg import conninfo

from lifeboat.sandbox.deployment import LettaDatabase

LIFEBOAT = Path(sys.executable).with_name("lifeboat")


def _libpq_environment(dsn: str, tmp_path: Path) -> dict[str, str]:
    params = conninfo.conninfo_to_dict(dsn)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("LETTA_", "PG", "LIFEBOAT_"))}
    env |= {
        "PGHOST": str(params["host"]),
        "PGPORT": str(params["port"]),
        "PGUSER": str(params["user"]),
        "PGDATABASE": str(params["dbname"]),
        "LIFEBOAT_CONFIG": str(tmp_path / "absent.toml"),
        "HOME": str(tmp_path),
    }
    if params.get("password"):
        passfile = tmp_path / "pgpass"
        passfile.write_text(f"*:*:*:{params['user']}:{params['password']}\n")
        passfile.chmod(0o600)
        env["PGPASSFILE"] = str(passfile)
    return env


def test_pg_variables_alone_reach_the_database(letta_db: LettaDatabase, tmp_path: Path) -> None:
    env = _libpq_environment(letta_db.dsn, tmp_path)
    verify = subprocess.run(
        [str(LIFEBOAT), "verify", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True

    doctor = subprocess.run(
        [str(LIFEBOAT), "doctor", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    report = json.loads(doctor.stdout)
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["settings"]["details"]["database"].startswith("PGHOST, PGPORT, PGUSER, PGDATABASE")
    assert checks["database.version"]["status"] == "ok"


def test_a_connection_error_says_where_the_dsn_came_from(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("LETTA_", "PG", "LIFEBOAT_"))}
    env |= {"HOME": str(tmp_path), "LIFEBOAT_CONFIG": str(tmp_path / "absent.toml")}
    refused = "postgresql://letta:canary-pw@127.0.0.1:9/letta"
    cases = {
        "LETTA_PG_URI": ({"LETTA_PG_URI": refused}, []),
        "--db": ({}, ["--db", refused]),
        "PGHOST, PGPORT": ({"PGHOST": "127.0.0.1", "PGPORT": "9"}, []),
        "default": ({}, []),
    }
    for source, (extra_env, flags) in cases.items():
        run = subprocess.run(
            [str(LIFEBOAT), "verify", *flags],
            env=env | extra_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 4, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and f"(connection settings from {source}" in lines[0], lines
        assert "canary-pw" not in run.stderr + run.stdout
