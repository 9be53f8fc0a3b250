"""One small error hierarchy; the CLI maps each class to a stable exit code."""

from __future__ import annotations

import signal

ROLLED_BACK = "rolled back: "


class LifeboatError(Exception):
    """Base of every error lifeboat reports to an operator as a one-line message."""

    exit_code = 1


class UsageError(LifeboatError):
    exit_code = 2


class VerificationFailed(LifeboatError):
    exit_code = 3


class DatabaseError(LifeboatError):
    """The database could not be reached or refused an operation."""

    exit_code = 4


class UnsafeRestore(LifeboatError):
    """A restore was refused because it could lose data (target exists, active runs, ...)."""

    exit_code = 5


class RedisUnavailable(LifeboatError):
    """Letta's Redis (LETTA_REDIS_HOST/PORT or --redis-url) could not be reached."""

    exit_code = 7


class RepositoryNotFound(LifeboatError):
    exit_code = 10


class RepositoryLocked(LifeboatError):
    exit_code = 11


class WrongPassphrase(LifeboatError):
    exit_code = 12


class RepositoryExists(LifeboatError):
    """``init`` was asked to create a repository where one (or other files) already exists."""


class CorruptRepository(LifeboatError):
    """A blob, pack, index or manifest failed its checksum or could not be decoded."""

    exit_code = 13


class CorruptBlob(CorruptRepository):
    """One blob failed decryption, decompression or its keyed hash; ``blob_id`` names it."""

    def __init__(self, blob_id: str, reason: str) -> None:
        super().__init__(f"blob {blob_id} is damaged: {reason}")
        self.blob_id = blob_id
        self.reason = reason


class StorageError(LifeboatError):
    """The repository's storage failed (disk, network, permissions) while writing or reading.

    ``location`` names the file or prefix (``<repository url>/<name>``) when one is known.
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class SnapshotNotFound(LifeboatError):
    exit_code = 14


class SandboxError(LifeboatError):
    """The throwaway PostgreSQL or Letta sandbox could not be built or started."""

    exit_code = 20


class ValidationFailed(LifeboatError):
    """An input (an agent file) failed validation; ``problems`` lists every problem found.

    Nothing was written. The message is one line; the CLI prints the full list.
    """

    exit_code = 6

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [message])


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (the CLI's handler raises it in the main thread).

    A ``BaseException`` like ``KeyboardInterrupt``, so ``except Exception`` blocks do not swallow
    it while every ``finally``/``except BaseException`` cleanup runs exactly as for an error:
    temporary databases dropped, locks released, unfinished files removed. Exit 128 + signal
    number (130 for SIGINT, 143 for SIGTERM), the shells' convention.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {self.signal_name}")


def note_rolled_back(exc: BaseException, what: str) -> None:
    """Record on ``exc`` what a cleanup undid; the CLI prints it with the error or interruption."""
    exc.add_note(ROLLED_BACK + what)


def rolled_back(exc: BaseException) -> list[str]:
    """What cleanups recorded with :func:`note_rolled_back` while ``exc`` unwound."""
    notes = getattr(exc, "__notes__", [])
    return [note[len(ROLLED_BACK) :] for note in notes if note.startswith(ROLLED_BACK)]
