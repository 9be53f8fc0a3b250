"""--help reads like click/restic: TEXT/INTEGER/PATH type names, nothing after a flag, and
docstrings as flowing sentences (no line breaks from the source in the middle of a sentence)."""

from __future__ import annotations

import pytest
from support import cli_commands

from lifeboat.cli import main
from lifeboat.cli.help_style import click_type_name, unwrap


def _help(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", cli_commands())
def test_help_shows_click_type_names(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    text = _help(command.split(), capsys)
    for python_name in ("<str>", "<int", "<bool>", "<float", "<list[", "<path>", "<Path>"):
        assert python_name not in text, f"{command}: {python_name}"


def test_sentences_are_not_broken_by_the_source_layout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    listing = _help([], capsys)
    assert "memory blocks (unified diffs), attached blocks, tools and folders" in listing
    restore = _help(["restore"], capsys)
    assert "(or, with --force, over an existing one); or, with --agent/--name/--tag, bring" in restore


def test_the_pieces() -> None:
    assert [click_type_name(t) for t in ("<str>", "<int range>", "<list[str]>", "<in-place|copy>")] == [
        "TEXT",
        "INTEGER",
        "TEXT",
        "in-place|copy",
    ]
    assert unwrap("One sentence\n    that goes on.\n\n    Next paragraph.") == (
        "One sentence that goes on.\n\nNext paragraph."
    )
