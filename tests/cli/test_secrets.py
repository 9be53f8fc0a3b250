"""Canary secrets: a password in the DSN, one in the Redis URL and the passphrase are never printed.

Every command runs as an operator would run it (a subprocess, human and --json output), once
with errors forced (an unreachable database, a DSN libpq cannot parse, an unreachable Redis, a
missing repository, a bad option) and, for the commands that report on them, once succeeding;
none of the canaries may appear in stdout, stderr, the metrics file or the drill reports.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from support import cli, cli_commands, new_repo

from lifeboat.ops.backup import run_backup
from lifeboat.sandbox.deployment import LettaDatabase
from lifeboat.sandbox.postgres import free_port
from lifeboat.sandbox.redis_server import RedisServer

DB_CANARY = "pgCanary7f3e9d1c"
REDIS_CANARY = "redisCanary51ab90"
PASS_CANARY = "passCanary88c2e4f"
CANARIES = (DB_CANARY, REDIS_CANARY, PASS_CANARY)


@pytest.fixture
def secured_redis(redis_server: RedisServer) -> Iterator[str]:
    """The test's redis-server, now requiring the canary password; its URL with that password."""
    redis_server.client().config_set("requirepass", REDIS_CANARY)
    yield f"redis://:{REDIS_CANARY}@127.0.0.1:{redis_server.port}/0"
    authenticated = redis.Redis(host="127.0.0.1", port=redis_server.port, password=REDIS_CANARY)
    authenticated.config_set("requirepass", "")


def _error_runs(letta_db: LettaDatabase, tmp: Path) -> list[list[str]]:
    dead = f"postgresql://letta:{DB_CANARY}@127.0.0.1:{free_port()}/letta"
    garbage = f"postgresql://letta:{DB_CANARY}%zz@127.0.0.1/letta"
    dead_redis = f"redis://:{REDIS_CANARY}@127.0.0.1:{free_port()}/0"
    good = letta_db.cluster.dsn(letta_db.dbname, "postgres", DB_CANARY)
    missing = str(tmp / "no-repository")
    metrics = str(tmp / "metrics.prom")
    reports = str(tmp / "reports")
    return [
        ["backup", "--metrics-file", metrics],  # LETTA_PG_URI: unreachable
        ["backup", "--db", garbage, "--metrics-file", metrics],
        ["restore", "latest", "--target", dead],
        ["restore", "latest", "--target", garbage],
        ["restore", "--agent", "agent-00000000-0000-4000-8000-000000000000", "--db", dead],
        ["agents", "list", "--db", dead],
        ["verify"],
        ["verify", "--db", garbage],
        ["reconcile", "--db", good, "--redis-url", dead_redis],
        ["reconcile", "--db", dead, "--no-redis"],
        ["drill", "--target", dead, "--report", reports],
        ["doctor", "--target", dead],
        ["export", "--all", "-o", str(tmp / "out.af"), "--db", dead],
        ["import", str(tmp / "missing.af"), "--db", dead],
        ["migrate", str(tmp / "letta-code"), "--db", dead],
        ["diff", "latest", "nothing-like-this"],
        ["init"],  # the repository exists
        *(
            [*command, "--repo", missing]
            for command in (
                ["snapshots"],
                ["check"],
                ["forget", "--keep-last", "1"],
                ["prune"],
                ["unlock"],
                ["drills"],
                ["upgrade-repository"],
                ["repair", "index"],
                ["repair", "packs"],
                ["repair", "snapshots"],
                ["repair", "config"],
                ["repair", "keys"],
                ["tag", "--add", "x", "latest"],
                ["ls", "latest"],
                ["stats"],
                ["key", "list"],
                ["key", "add", "--new-password-file", str(tmp / "nope")],
                ["key", "remove", "ffff"],
                ["key", "passwd", "--new-password-file", str(tmp / "nope")],
            )
        ),
        ["copy", "--to", missing],
        ["demo", "--flavor", "pg99"],
    ]


def _good_runs(letta_db: LettaDatabase, tmp: Path, redis_url: str) -> list[list[str]]:
    good = letta_db.cluster.dsn(letta_db.dbname, "postgres", DB_CANARY)  # trust auth: accepted
    target = letta_db.cluster.dsn(f"{letta_db.dbname}_canary_drill", "postgres", DB_CANARY)
    return [
        ["backup", "--db", good, "--metrics-file", str(tmp / "metrics.prom")],
        ["snapshots"],
        ["reconcile", "--db", good, "--redis-url", redis_url],
        ["verify", "--db", good],
        ["doctor", "--db", good],
        ["drill", "--target", target, "--report", str(tmp / "reports")],
    ]


def _leaks(args: list[str], env: dict[str, str], *, succeeds: bool = False) -> list[str]:
    result = cli(*args, env=env)
    if succeeds:  # the good runs do their job (doctor may still fail an unrelated check: 3)
        assert result.returncode in (0, 3), (args, result.stderr)
        if args[0] == "reconcile" and "--json" in args:  # the Redis URL is reported, redacted
            assert "redis://:***@127.0.0.1:" in result.stdout, result.stdout
    found = [
        f"{' '.join(args)}: {canary} in {where}"
        for canary in CANARIES
        for where, text in (("stdout", result.stdout), ("stderr", result.stderr))
        if canary in text
    ]
    if "Traceback" in result.stderr:
        found.append(f"{' '.join(args)}: a traceback")
    return found


def test_canaries_never_appear(letta_db: LettaDatabase, secured_redis: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_backup(new_repo(repo, passphrase=PASS_CANARY), letta_db.admin_dsn)
    env = {
        "LIFEBOAT_REPOSITORY": str(repo),
        "LIFEBOAT_PASSWORD": PASS_CANARY,
        "LETTA_PG_URI": f"postgresql://letta:{DB_CANARY}@127.0.0.1:{free_port()}/letta",
        "LETTA_REDIS_HOST": "",
    }
    runs = _error_runs(letta_db, tmp_path)
    groups = ("agents", "repair", "key")
    assert sorted({" ".join(a[:2] if a[0] in groups else a[:1]) for a in runs}) == cli_commands()
    variants = [args for args in runs] + [[*args, "--json"] for args in runs]
    with ThreadPoolExecutor(max_workers=2) as pool:
        leaks = list(itertools.chain.from_iterable(pool.map(lambda args: _leaks(args, env), variants)))
    for args in _good_runs(letta_db, tmp_path, secured_redis):
        leaks += _leaks(args, env, succeeds=True) + _leaks([*args, "--json"], env, succeeds=True)
    written = [tmp_path / "metrics.prom", *sorted((tmp_path / "reports").iterdir())]
    assert any(path.suffix == ".html" for path in written)
    for path in written:
        text = path.read_text()
        leaks += [f"{path.name}: {canary}" for canary in CANARIES if canary in text]
    assert leaks == []
