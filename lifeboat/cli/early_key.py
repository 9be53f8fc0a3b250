"""The repository key's derivation, started before the command line is parsed.

Opening an encrypted repository derives a key from the passphrase (Argon2id: ~0.13 s of CPU on
two threads, C code that runs without the GIL). The command itself starts that on a thread as
soon as it knows the repository and passphrase (``common.start_opening_repo``), but by then typer
has parsed the command line, ~0.1 s into the process. :func:`derive_ahead` starts it right at the
entry point instead, from a quick look at the arguments (``--repo``/``-r``, ``--password-file``)
and what the settings say otherwise, for a local repository and a passphrase that needs no
prompt (from the environment or a regular file: a pipe such as ``/dev/stdin`` is left for the
command to read). It reads the first key file (the one :func:`lifeboat.repo.keys.unlock` tries
first) and hands its parameters and salt to :meth:`~lifeboat.repo.kdf.KdfParams.derive_ahead`;
the key file is parsed and bounded exactly as when the repository opens.

Nothing here can change an outcome: the repository opens as before and takes the early result
only for the very same parameters, salt and passphrase. Anything unexpected (a prompt needed, S3,
no key file, a damaged one, an option this look misreads) just means no early start.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from lifeboat.cli.commands import command_name

# lifeboat.repo.config.KEYS_DIR (a test checks): importing config would bring pydantic into the
# early start, which must not wait for it.
KEYS_DIR = "keys/"
# Commands that never open an existing repository's keys.
NO_REPOSITORY = frozenset({"demo", "import", "init", "reconcile"})


def derive_ahead(args: Sequence[str]) -> None:
    """Start deriving the key of the repository ``lifeboat ARGS`` will open, when it can be known
    cheaply (``ARGS`` as ``main`` passes them to the app)."""
    command = command_name(args)
    if command is None or command in NO_REPOSITORY or "--help" in args:
        return
    threading.Thread(
        target=_derive_ahead, args=(list(args),), name="lifeboat-derive-early", daemon=True
    ).start()


def _derive_ahead(args: list[str]) -> None:
    try:
        _start(args)
    except Exception:  # the command finds and reports whatever is wrong itself
        return


def _start(args: list[str]) -> None:
    import json

    from lifeboat import settings
    from lifeboat.repo.kdf import parse_key_file

    config = settings.load_config()
    url = settings.repository_url(_option(args, "--repo", "-r"), config)
    given = _option(args, "--password-file")
    password_file = settings.passphrase_file(Path(given) if given else None, config=config)
    if password_file is not None and not password_file.is_file():
        return  # a pipe (/dev/stdin) must be read once, by the command: never here
    secret = settings.passphrase(password_file, config=config, prompt=False)
    key_file = _first_key_file(url)
    if not secret or key_file is None:
        return
    params, salt, _sealed = parse_key_file(json.loads(key_file))
    params.derive_ahead(secret, salt)


def _option(args: Sequence[str], *names: str) -> str | None:
    """The value of the first of ``names`` given as ``NAME VALUE`` or ``--NAME=VALUE`` before ``--``."""
    for position, arg in enumerate(args):
        if arg == "--":
            break
        if arg in names and position + 1 < len(args):
            return args[position + 1]
        name, equals, value = arg.partition("=")
        if equals and name in names:
            return value
    return None


def _first_key_file(url: str) -> bytes | None:
    """The key file a local repository's opening tries first, read as it reads it (the first name
    of ``keys/`` in order, at most a key file's size); None for S3 or an oversized file."""
    from lifeboat.repo.backends import open_backend
    from lifeboat.repo.kdf import MAX_KEY_FILE_SIZE

    if url.startswith("s3://"):  # its client library alone takes longer to import than the key
        return None
    backend = open_backend(url)
    key_files = sorted(backend.list(KEYS_DIR), key=lambda info: info.name)
    if not key_files or key_files[0].size > MAX_KEY_FILE_SIZE:
        return None
    return backend.get(key_files[0].name, 0, MAX_KEY_FILE_SIZE)
