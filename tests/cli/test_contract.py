"""The CLI contract: every usage error is one line and exit 2 (one JSON object with --json), no
traceback ever reaches the user, and the README's exit-code table matches the error classes."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import cli, cli_commands, new_repo, run_main

from lifeboat import errors
from lifeboat.cli import output

README = Path(__file__).parents[2] / "README.md"
# Variables that would let a command get past its usage checks to real work.
SETTINGS = (
    "LIFEBOAT_REPOSITORY",
    "LIFEBOAT_PASSWORD",
    "LIFEBOAT_PASSWORD_FILE",
    "LETTA_PG_URI",
    "LETTA_PG_DB",
    "LETTA_REDIS_HOST",
)

# command -> (a bad value, a missing argument); {repo} is an existing repository.
MATRIX: dict[str, tuple[list[str], list[str]]] = {
    "init": (["--repo", "{repo}", "--password-file", "/nonexistent/passphrase"], ["--repo"]),
    "snapshots": (["--repo", "s3://"], ["--repo"]),
    "check": (["--repo", "{repo}", "--read-data-subset", "most"], ["--read-data-subset"]),
    "backup": (["--jobs", "many"], ["--db"]),
    "restore": (["--mode", "sideways"], ["--target"]),
    "agents list": (["--db", "not a dsn"], ["--snapshot"]),
    "diff": (["a", "b", "--repo", "ftp://elsewhere"], []),
    "verify": (["--db", "postgresql://u:p@h:5432/db?nonsense=1"], ["--check"]),
    "reconcile": (["--older-than", "a while"], ["--redis-url"]),
    "drill": (["--jobs", "0.5"], ["--target"]),
    "drills": (["--repo", "{repo}", "--password-file", "/nonexistent/passphrase"], ["--repo"]),
    "forget": (["--keep-last", "several"], ["--keep-within"]),
    "prune": (["--repack-threshold", "2"], ["--retry-lock"]),
    "copy": (["--repo", "{repo}", "--to", "s3://"], ["--to"]),
    "unlock": (["--remove-all=yes"], ["--repo"]),
    "doctor": (["--max-age", "ages"], ["--db"]),
    "export": (["--all", "-o", "/tmp/out.af", "--db", "garbage"], []),
    "import": (["--max-bytes", "lots", "file.af"], []),
    "demo": (["--flavor", "pg99"], ["--flavor"]),
    "migrate": (["--to", "letta-cloud"], ["--snapshot"]),
    "upgrade-repository": (["--repo", "s3://"], ["--repo"]),
    "repair index": (["--repo", "s3://"], ["--repo"]),
    "repair config": (["--repo", "s3://"], ["--repo"]),
    "repair keys": (["--repo", "{repo}", "--password-file", "/nonexistent/passphrase"], ["--password-file"]),
    "tag": (["--add", "two words", "latest"], ["--add"]),
    "ls": (["latest", "--repo", "s3://"], []),
    "stats": (["--repo", "s3://"], ["--host"]),
    "key list": (["--repo", "s3://"], ["--repo"]),
    "key add": (["--repo", "{repo}", "--password-file", "/nonexistent/passphrase"], ["--new-password-file"]),
    "key remove": (["k", "--repo", "s3://"], []),
    "key passwd": (
        ["--repo", "{repo}", "--password-file", "/nonexistent/passphrase"],
        ["--new-password-file"],
    ),
    "repair packs": (["--repo", "{repo}", "--password-file", "/nonexistent/passphrase"], ["--repo"]),
    "repair snapshots": (["--forget=maybe"], ["--password-file"]),
}
KINDS = ("unknown option", "bad value", "missing argument", "--json")


def test_the_matrix_covers_every_command() -> None:
    assert cli_commands() == sorted(MATRIX)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIFEBOAT_CONFIG", str(tmp_path / "no-config.toml"))
    yield tmp_path
    output.set_json(False)


def _args(command: str, kind: str, repo: Path) -> list[str]:
    bad, missing = MATRIX[command]
    head = command.split()
    if kind == "unknown option":
        tail = ["--no-such-option"]
    elif kind == "bad value":
        tail = [arg.replace("{repo}", str(repo)) for arg in bad]
    else:
        tail = missing
    args = [*head, *tail]
    return [*args, "--json"] if kind == "--json" else args


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", sorted(MATRIX))
def test_usage_errors_exit_2_in_one_line(
    command: str, kind: str, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = clean_env / "repo"
    if not repo.exists():
        new_repo(repo)
    code, out, err = run_main(capsys, *_args(command, kind, repo))
    assert code == 2, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    if kind == "--json":
        document = json.loads(lines[0])
        assert document["exit_code"] == 2 and document["error"] == "UsageError" and document["message"]
        assert out == ""
    else:
        assert lines[0].startswith("lifeboat: error: ")


def test_the_real_entry_point(tmp_path: Path) -> None:
    """Through the installed entry point, as an operator or a cron job sees it."""
    unknown = cli("--no-such-option")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr
    as_json = cli("backup", "--json", env={"LIFEBOAT_REPOSITORY": ""})
    assert as_json.returncode == 2, as_json.stderr
    assert json.loads(as_json.stderr)["error"] == "UsageError"


def test_usage_rules_of_restore_and_passphrase(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = clean_env / "repo"
    new_repo(repo)
    cases = {
        "copy mode without agents": ["restore", "--repo", str(repo), "--mode", "copy"],
        "target without a database": ["restore", "--repo", str(repo), "--target", "postgresql://u@h:5432"],
        "garbage DSN": ["backup", "--repo", str(repo), "--db", "garbage"],
        "no passphrase": ["snapshots", "--repo", str(repo)],
    }
    for name, args in cases.items():
        code, _out, err = run_main(capsys, *args)
        assert code == 2, (name, err)
        assert err.count("\n") == 1, (name, err)


def test_an_unexpected_exception_is_one_line_or_a_traceback_with_debug(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.cli import repository

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("an internal bug")

    monkeypatch.setattr(repository, "open_repo", broken)
    code, _out, err = run_main(capsys, "snapshots")
    assert code == 1
    assert err.strip().splitlines() == [
        "lifeboat: error: unexpected ZeroDivisionError: an internal bug (rerun with --debug for the traceback)"
    ]
    code, _out, err = run_main(capsys, "snapshots", "--debug")
    assert code == 1 and "Traceback" in err and "ZeroDivisionError" in err


def _readme_exit_codes() -> dict[int, str]:
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([^|]*)\|", section, flags=re.MULTILINE)
    return {int(code): meaning.strip() for code, meaning in rows}


def _code_exit_codes() -> set[int]:
    classes = [
        cls for cls in vars(errors).values() if inspect.isclass(cls) and issubclass(cls, errors.LifeboatError)
    ]
    interrupted = {errors.Interrupted(sig).exit_code for sig in (2, 15)}  # SIGINT, SIGTERM
    return {0} | {cls.exit_code for cls in classes} | interrupted


def test_the_readme_exit_code_table_matches_the_error_classes() -> None:
    documented = _readme_exit_codes()
    assert set(documented) == _code_exit_codes()
    assert "usage" in documented[errors.UsageError.exit_code]
    assert "SIGTERM" in documented[143] and "Ctrl-C" in documented[130]


def test_json_output_prints_models_and_catalog_entries(capsys: pytest.CaptureFixture[str]) -> None:
    from lifeboat.cli import output
    from lifeboat.letta.catalog import AgentEntry

    output.set_json(True)
    try:
        output.emit({"agents": [AgentEntry(id="agent-1", name="a", tags=["x"])]})
    finally:
        output.set_json(False)
    printed = json.loads(capsys.readouterr().out)
    assert printed["agents"][0] == {
        "id": "agent-1", "name": "a", "organization_id": None, "agent_type": None, "tags": ["x"],
        "messages": 0, "passages": 0, "blocks": 0, "last_activity": None, "last_run_status": None, "digest": "",
    }  # fmt: skip
