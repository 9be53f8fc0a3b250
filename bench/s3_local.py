"""A local S3-compatible endpoint for the benchmark: moto's server mode as its own process.

The S3 rows of bench/backup_restore.py time lifeboat against it. moto keeps every object in its own
process (in memory, large bodies spilled to temporary files) and runs on the same 2 cores as the
database and lifeboat, so its CPU is recorded beside each command: a real S3 endpoint would not
take it from the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """``with MotoServer([moto_server]) as s3:`` — ``s3.endpoint``, ``s3.env(base)``, ``s3.new_bucket()``.

    ``command`` starts the server and takes moto_server's ``-H``/``-p`` options (moto_server itself,
    or bench/moto_ranged.py, which serves ranged GETs without reading the whole object)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def __enter__(self) -> MotoServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [*self.command, "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **CREDENTIALS},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        self.__exit__(None, None, None)
        raise SystemExit("moto_server did not start within 30 s")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` plus what lifeboat needs to reach this endpoint."""
        return {**base, **CREDENTIALS, "LIFEBOAT_S3_ENDPOINT": self.endpoint}

    def new_bucket(self) -> str:
        import boto3

        bucket = f"lifeboat-bench-{uuid.uuid4().hex[:8]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=bucket)
        return bucket

    def cpu_seconds(self) -> float:
        """The moto process's CPU seconds so far (user + system, from /proc)."""
        if self.process is None:
            return 0.0
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """The moto process's peak RSS so far (VmHWM), in MB."""
        if self.process is None:
            return 0.0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0
