"""Issue 12 item 2, attack suite (planted schema): restore never executes stored text as-is.

A hostile insider (or anyone who can write an unencrypted repository) writes a snapshot whose
schema document carries a second statement in a column type, a default, an index definition, a
constraint and a grant. Each restore is refused with one line and exit 13 before anything runs:
the planted statement would create a role (roles are cluster-wide, so they outlive any dropped
database), which must not exist afterwards, and no database is left behind.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ops_testing import LIFEBOAT, PASSPHRASE, cli, new_repo

from lifeboat.errors import UnsafeRestore
from lifeboat.ops.backup import run_backup
from lifeboat.ops.restore import Trust, check_trust, run_restore
from lifeboat.ops.snapshot_layout import schema_document as snapshot_schema
from lifeboat.repo.manifest import Snapshot
from lifeboat.repo.repository import Repository
from lifeboat.sandbox.deployment import load_deployment
from lifeboat.sandbox.postgres import Cluster

PLANTED_ROLE = "lifeboat_planted"
Schema = dict[str, Any]


@dataclass
class Genuine:
    cluster: Cluster
    repo_path: Path
    plain_repo_path: Path
    snapshot_id: str
    plain_snapshot_id: str


@pytest.fixture(scope="module")
def genuine(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Genuine]:
    """One real Letta backup in an encrypted repository and one in an unencrypted repository."""
    base = tmp_path_factory.mktemp("planted")
    database = load_deployment(pg_cluster, "planted_source")
    try:
        repo = new_repo(base / "repo")
        snapshot = run_backup(repo, database.admin_dsn).snapshot
        plain = Repository.init(base / "plain", None, encrypt=False)
        plain_snapshot = run_backup(plain, database.admin_dsn).snapshot
    finally:
        database.drop()
    yield Genuine(pg_cluster, base / "repo", base / "plain", snapshot.id, plain_snapshot.id)


def plant(repo: Repository, snapshot_id: str, mutate: Callable[[Schema], None]) -> str:
    """Write a snapshot like ``snapshot_id`` whose schema document ``mutate`` changed (with the key)."""
    original = repo.load_snapshot(snapshot_id)
    documents = copy.deepcopy(original.documents)
    mutate(documents["schema"])
    planted = Snapshot(tags=["planted"], streams=original.streams, documents=documents)
    repo.save_snapshot(planted)
    return planted.id


def _table(schema: Schema, name: str) -> dict[str, Any]:
    return next(t for t in schema["tables"] if t["name"] == name)


def _column(schema: Schema, table: str, column: str) -> dict[str, Any]:
    return next(c for c in _table(schema, table)["columns"] if c["name"] == column)


SECOND = f"; CREATE ROLE {PLANTED_ROLE} SUPERUSER LOGIN"


def _in_type(schema: Schema) -> None:
    _column(schema, "agents", "name")["type"] = "character varying" + SECOND


def _in_default(schema: Schema) -> None:
    _column(schema, "agents", "created_at")["default"] = "now()" + SECOND


def _in_index(schema: Schema) -> None:
    index = next(t for t in schema["tables"] if t["indexes"])["indexes"][0]
    index["definition"] += SECOND


def _in_constraint(schema: Schema) -> None:
    constraint = next(c for c in _table(schema, "messages")["constraints"] if c["kind"] == "f")
    constraint["definition"] += SECOND


def _in_grant(schema: Schema) -> None:
    _table(schema, "agents")["grants"] = [
        {"grantee": None, "privilege": f"SELECT ON TABLE letta.agents TO PUBLIC{SECOND}; GRANT SELECT"}
    ]


def _copy_to_program(schema: Schema) -> None:
    """One statement, but one that reaches outside the database: a CHECK run on every COPYed row."""
    _table(schema, "agents")["constraints"].append(
        {"name": "planted", "kind": "c", "definition": "CHECK ((pg_catalog.lo_export(1, '/tmp/x') > 0))"}
    )


ATTACKS = {
    "type": _in_type,
    "default": _in_default,
    "index": _in_index,
    "constraint": _in_constraint,
    "grant": _in_grant,
    "admin-function": _copy_to_program,
}


def _role_exists(cluster: Cluster) -> bool:
    with psycopg.connect(cluster.dsn()) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PLANTED_ROLE,)).fetchone() is not None
        )


def _restore_cli(genuine: Genuine, snapshot_id: str, target: str, *flags: str, plain: bool = False) -> Any:
    args = ["restore", snapshot_id, "--target", genuine.cluster.dsn(target), *flags]
    if not plain:
        return cli(*args, "--repo", str(genuine.repo_path))
    env = {k: v for k, v in os.environ.items() if k not in ("LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_FILE")}
    args += ["--repo", str(genuine.plain_repo_path)]  # no passphrase: the repository has none
    return subprocess.run([*LIFEBOAT, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("where", sorted(ATTACKS))
def test_planted_statement_is_refused_and_nothing_runs(genuine: Genuine, where: str) -> None:
    repo = Repository.open(genuine.repo_path, PASSPHRASE)
    planted = plant(repo, genuine.snapshot_id, ATTACKS[where])
    before = set(genuine.cluster.list_databases())
    target = f"planted_{where.replace('-', '_')}"

    result = _restore_cli(genuine, planted, target, "--trust-schema")  # no flag makes a bad shape pass

    assert result.returncode == 13, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused, nothing was executed" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not _role_exists(genuine.cluster)
    assert set(genuine.cluster.list_databases()) == before  # no target, no temporary database


def test_schema_that_differs_from_the_record_needs_trust_schema(genuine: Genuine) -> None:
    """A well-formed change (a column's type) is a difference from the record of its revision."""
    repo = Repository.open(genuine.repo_path, PASSPHRASE)
    planted = plant(
        repo, genuine.snapshot_id, lambda s: _column(s, "agents", "description").update(type="text")
    )
    before = set(genuine.cluster.list_databases())

    refused = _restore_cli(genuine, planted, "planted_differs")

    assert refused.returncode == 5, refused.stderr
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "column agents.description is 'text'" in message and "--trust-schema" in message
    assert set(genuine.cluster.list_databases()) == before

    target = genuine.cluster.dsn("planted_trusted")
    result = run_restore(repo, planted, target, trust=Trust(schema=True), safety_snapshot=False)
    try:
        assert any("differs from the record" in warning for warning in result.warnings)
        with psycopg.connect(target) as conn:
            kind = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'letta.agents'::regclass AND attname = 'description'"
            ).fetchone()
        assert kind == ("text",)
    finally:
        with psycopg.connect(genuine.cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS planted_trusted WITH (FORCE)")


def test_genuine_snapshot_matches_its_record(genuine: Genuine) -> None:
    repo = Repository.open(genuine.repo_path, PASSPHRASE)
    snapshot = repo.load_snapshot(genuine.snapshot_id)
    warnings = check_trust(
        repo, snapshot, snapshot_schema(snapshot), trust_schema=False, trust_unencrypted=False
    )
    assert warnings == []


def test_unencrypted_repository_restores_only_when_trusted(genuine: Genuine) -> None:
    before = set(genuine.cluster.list_databases())
    refused = _restore_cli(genuine, genuine.plain_snapshot_id, "planted_plain", plain=True)
    assert refused.returncode == 5, refused.stderr
    assert "--trust-unencrypted" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert set(genuine.cluster.list_databases()) == before

    plain = Repository.open(genuine.plain_repo_path, None)
    snapshot = plain.load_snapshot(genuine.plain_snapshot_id)
    with pytest.raises(UnsafeRestore):
        check_trust(plain, snapshot, snapshot_schema(snapshot), trust_schema=False, trust_unencrypted=False)
    warnings = check_trust(
        plain, snapshot, snapshot_schema(snapshot), trust_schema=False, trust_unencrypted=True
    )
    assert any("unencrypted" in warning for warning in warnings)


def test_planted_snapshot_in_unencrypted_repository_is_refused_even_when_trusted(genuine: Genuine) -> None:
    """Trusting an unencrypted repository does not make a second statement run."""
    plain = Repository.open(genuine.plain_repo_path, None)
    planted = plant(plain, genuine.plain_snapshot_id, _in_type)
    result = _restore_cli(
        genuine,
        planted,
        "planted_plain2",
        "--trust-unencrypted",
        "--trust-schema",
        plain=True,
    )
    assert result.returncode == 13, result.stderr
    assert not _role_exists(genuine.cluster)
