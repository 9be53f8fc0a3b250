"""`lifeboat export`: agents → Letta agent files, read in one consistent transaction.

Every file of one export is built inside a single ``REPEATABLE READ READ ONLY`` transaction,
so an export of all agents is one instant of the database even while the Letta server keeps
writing. Files are written atomically (temporary file, fsync, rename) with owner-only
permissions: they hold conversations and memory in clear.

:func:`export_from_connection` is the seam for other sources: anything that can offer a
connection to a Letta database (e.g. a snapshot restored into a throwaway database) can be
exported with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from lifeboat.errors import UsageError
from lifeboat.letta import ids
from lifeboat.letta.agent_file import AgentFile
from lifeboat.letta.agent_file_export import build_agent_file, group_members, resolve_agent_ids, revision
from lifeboat.letta.locate import enter_letta_schema
from lifeboat.pg.connect import connection, database_errors

SUFFIXES = (".af", ".json")


@dataclass
class ExportedFile:
    path: str
    agent_ids: list[str]  # database ids, the requested agent first
    agent_names: list[str]
    messages: int
    bytes: int
    id_map: dict[str, str] = field(default_factory=dict)  # file id -> database id


@dataclass
class ExportReport:
    complete: bool
    revision: str
    files: list[ExportedFile] = field(default_factory=list)


def is_single_file(output: Path) -> bool:
    """``-o x.af`` (or ``-``) writes one file with every agent; anything else is a directory."""
    return str(output) == "-" or output.suffix in SUFFIXES or (output.exists() and not output.is_dir())


def plan_files(conn: psycopg.Connection, agent_ids: Sequence[str], single: bool) -> list[list[str]]:
    """Which agents go into which file.

    One file for everything, or one per agent where group participants ride along with their
    manager (Letta's export pulls them in anyway) instead of getting a file of their own.
    """
    if single:
        return [list(agent_ids)]
    members = group_members(conn, agent_ids)
    riders = {m for manager, ids in members.items() if manager in agent_ids for m in ids if m != manager}
    return [[agent_id] for agent_id in agent_ids if agent_id not in riders or agent_id in members]


def export_from_connection(
    conn: psycopg.Connection,
    agent_ids: Sequence[str] | None,
    output: Path,
    *,
    complete: bool = False,
) -> ExportReport:
    """Export ``agent_ids`` (None = every agent) from ``conn`` into ``output``.

    ``conn`` must be an autocommit connection; the export opens its own read transaction.
    """
    single = is_single_file(output)
    with _read_transaction(conn):
        wanted = resolve_agent_ids(conn, agent_ids)
        if not wanted:
            raise UsageError("the database has no agents to export")
        report = ExportReport(complete=complete, revision=revision(conn))
        documents = []
        for group in plan_files(conn, wanted, single):
            doc, id_map = build_agent_file(conn, group, complete=complete)
            documents.append((doc, id_map))
    if not single:
        output.mkdir(parents=True, exist_ok=True)
    for doc, id_map in documents:
        path = output if single else output / file_name_for(id_map[doc.agents[0].id])
        report.files.append(_write(doc, id_map, path))
    return report


def file_name_for(agent_id: str) -> str:
    """``<agent id>.af``; an id that is not Letta's strict shape never becomes a path."""
    if ids.is_valid("agents", agent_id, strict=True):
        return f"{agent_id}.af"
    return f"agent-{hashlib.sha256(agent_id.encode()).hexdigest()[:32]}.af"


@contextlib.contextmanager
def _read_transaction(conn: psycopg.Connection) -> Iterator[None]:
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        enter_letta_schema(conn)  # the database's own search_path may not name it
        yield


def _write(doc: AgentFile, id_map: dict[str, str], path: Path) -> ExportedFile:
    data = (json.dumps(doc.to_json_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomically(path, data)
    return ExportedFile(
        path=str(path),
        agent_ids=[id_map[a.id] for a in doc.agents],
        agent_names=[a.name for a in doc.agents],
        messages=sum(len(a.messages) for a in doc.agents),
        bytes=len(data),
        id_map=id_map,
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def export_agents(
    dsn: str,
    agent_ids: Sequence[str] | None,
    output: Path,
    *,
    complete: bool = False,
) -> ExportReport:
    """Export from the live database at ``dsn`` (see :func:`export_from_connection`)."""
    with connection(dsn) as conn, database_errors("export failed"):
        return export_from_connection(conn, agent_ids, output, complete=complete)
