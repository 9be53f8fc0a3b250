"""The root typer app, global options and the one place where errors become exit codes.

The contract (README "Exit codes"): every failure is one line on stderr (one JSON object with
``--json``) and a documented exit code; usage errors exit 2; SIGINT exits 130 and SIGTERM 143
after the cleanup; an unexpected exception is one line asking to rerun with ``--debug``, which
prints the traceback. Nothing printed carries a password (see :mod:`lifeboat.redact`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer

from lifeboat import __version__, redact
from lifeboat.cli import output
from lifeboat.cli.common import with_dsn_source
from lifeboat.cli.early_key import derive_ahead
from lifeboat.cli.signals import interruptions_raise
from lifeboat.errors import DatabaseError, Interrupted, LifeboatError, rolled_back
from lifeboat.repo.heap import fewer_collections, use_compact_heap

GLOBAL_FLAGS = ("--json", "--debug")
QUIET_LIBRARIES = ("psycopg", "botocore", "boto3", "urllib3", "httpx")

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
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Machine-readable JSON on stdout (also accepted after the command)."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the traceback of an unexpected error (and debug logs).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    output.set_json(json_output)


def hoist_global_flags(args: Sequence[str]) -> tuple[list[str], set[str]]:
    """Move ``--json``/``--debug`` (before any ``--``) in front of the command: they are global, and
    every command accepts them wherever they are written. Returns the new arguments and the flags."""
    flags: set[str] = set()
    rest: list[str] = []
    for position, arg in enumerate(args):
        if arg == "--":
            rest += args[position:]
            break
        if arg in GLOBAL_FLAGS:
            flags.add(arg)
        else:
            rest.append(arg)
    return sorted(flags) + rest, flags


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run the app; every outcome becomes an exit code (see the module doc).

    Run as the program (``argv`` None: the console script, ``python -m lifeboat``), it ends the
    process without the interpreter's teardown (:func:`exit_without_teardown`); called with
    ``argv`` (tests, embedding) it raises ``SystemExit`` as usual."""
    if argv is None:  # the process is ours: set its allocator before any thread starts
        use_compact_heap()
        fewer_collections()
    args, flags = hoist_global_flags(sys.argv[1:] if argv is None else argv)
    derive_ahead(args)
    debug = "--debug" in flags
    output.set_json("--json" in flags)
    redact.register_environment()
    _configure_logging(debug)
    with interruptions_raise():
        code = _run(args, debug)
    if argv is None:
        exit_without_teardown(code)
    sys.stdout.flush()
    sys.exit(code)


# Python's exit status when it cannot flush stdout at exit (a closed pipe): kept, so a reader
# that went away is not mistaken for success.
FLUSH_FAILED = 120


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with ``code`` after what the interpreter's own exit does that matters (the
    atexit handlers: logging's flush, weakref finalizers such as temporary directories' removal;
    the standard streams' flush) but without its teardown, which frees every object one by one:
    a parsed parent manifest, libpq's buffers, every module. That took 0.16-0.31 s after an
    incremental backup of ~1.5 s (BENCHMARKS.md, session 7). Every command has finished its work
    and released its repository lock when it returns its code; the threads it started are done
    (a daemon thread is not waited for by a normal exit either)."""
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or FLUSH_FAILED
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def _run(args: list[str], debug: bool) -> int:
    from lifeboat.cli import commands

    try:
        commands.load(commands.modules_for(args))
        result = app(args=args, prog_name="lifeboat", standalone_mode=False)
    except Interrupted as exc:
        return _interrupted(exc, None, debug)
    except LifeboatError as exc:
        interruption = _interruption_behind(exc)
        if interruption is not None:
            return _interrupted(interruption, exc, debug)
        _traceback(exc, debug)
        message = with_dsn_source(str(exc)) if isinstance(exc, DatabaseError) else str(exc)
        output.error(_with_rollbacks(message, exc), exc)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        output.error("aborted", kind="Aborted", code=1)
        return 1
    except KeyboardInterrupt as exc:  # only when the handler could not be installed
        return _interrupted(Interrupted(2), exc, debug)
    except Exception as exc:
        return _unexpected(exc, debug)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _click_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """``UsageError``/``ClickException`` of typer's bundled click (typer >= 0.29) and of click itself
    when something imported it (nothing can raise its exceptions otherwise; importing it costs
    ~60 ms of start-up)."""
    found = [cls for cls in typer.BadParameter.__mro__ if cls.__name__ == name]
    click = sys.modules.get("click")
    if click is not None:
        found.append(getattr(click.exceptions, name))
    return tuple(found)


def _unexpected(exc: Exception, debug: bool) -> int:
    parsing = _click_exceptions("UsageError") + _click_exceptions("ClickException")
    if isinstance(exc, parsing):  # raised while parsing the command line
        return _usage(exc)
    _traceback(exc, debug)
    hint = "" if debug else " (rerun with --debug for the traceback)"
    output.error(f"unexpected {type(exc).__name__}: {exc}{hint}", exc, kind="InternalError", code=1)
    return 1


def _usage(exc: BaseException) -> int:
    """A click/typer usage error: one line naming the command and pointing at its --help."""
    ctx: Any = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and not output.json_mode():
        output.stderr.write(_click_message(exc).rstrip() + "\n")  # a bare group: its help
        return 2
    command = getattr(ctx, "command_path", "lifeboat") or "lifeboat"
    message = _click_message(exc)
    if type(exc).__name__ == "NoArgsIsHelpError":
        message = "a command is required"
    subcommand = command.removeprefix("lifeboat").strip()  # the line already starts "lifeboat: error:"
    where = f"{subcommand}: " if subcommand else ""
    output.error(f"{where}{message} (see '{command} --help')", exc, kind="UsageError", code=2)
    return 2


def _click_message(exc: BaseException) -> str:
    format_message = getattr(exc, "format_message", None)
    return str(format_message() if callable(format_message) else exc)


def _interruption_behind(exc: BaseException) -> Interrupted | None:
    """The interruption a cleanup failure happened while handling, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc.__context__
    while current is not None and id(current) not in seen:
        if isinstance(current, Interrupted):
            return current
        seen.add(id(current))
        current = current.__context__
    return None


def _interrupted(exc: Interrupted, cleanup_error: BaseException | None, debug: bool) -> int:
    _traceback(cleanup_error or exc, debug)
    message = _with_rollbacks(f"interrupted by {exc.signal_name}", exc)
    if cleanup_error is not None:
        message += f"; cleanup failed: {cleanup_error}"
    output.error(message, kind="Interrupted", code=exc.exit_code)
    return exc.exit_code


def _with_rollbacks(message: str, exc: BaseException) -> str:
    undone = rolled_back(exc)
    return f"{message}; rolled back: {'; '.join(undone)}" if undone else message


def _traceback(exc: BaseException, debug: bool) -> None:
    if debug:
        text = "".join(traceback.format_exception(exc))
        output.stderr.write(text)


class _OneLineFormatter(logging.Formatter):
    """Log records as one line without tracebacks (unless --debug); secrets redacted."""

    def __init__(self, debug: bool) -> None:
        super().__init__("lifeboat: %(levelname)s: %(message)s")
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        if not self.debug:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return redact.redact(super().format(record))


def _configure_logging(debug: bool) -> None:
    """Log records reach stderr as single redacted lines; library chatter only with --debug.

    The handler goes on the root logger unless something (a test runner) configured one already.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter(debug))
    root_logger = logging.getLogger()
    if not root_logger.handlers:
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.WARNING)
    logging.getLogger("lifeboat").setLevel(logging.DEBUG if debug else logging.WARNING)
    for noisy in QUIET_LIBRARIES:  # e.g. psycopg's "error ignored terminating <Copy>" after a cancel
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)
