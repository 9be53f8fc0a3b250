"""The root typer app, global options and the one place where errors become exit codes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lifeboat import __version__
from lifeboat.cli import output
from lifeboat.errors import LifeboatError

app = typer.Typer(
    name="lifeboat",
    help="Backup, restore and rescue for Letta V1 agent servers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lifeboat {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    output.set_json(json_output)


def main() -> None:
    """Console entry point: run the app, turning LifeboatError into one line on stderr + exit code."""
    try:
        app(standalone_mode=False)
    except LifeboatError as exc:
        output.error(str(exc), exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        output.error("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        output.error("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.UsageError):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
