"""Prometheus textfile metrics (node_exporter's textfile collector) for backups and drills.

The file is updated, not overwritten: samples of other metric families, or of the same family
with other labels (another repository), are kept, so backup and drill may share one file. It is
written atomically (temp file + rename) because node_exporter may read it at any moment. A failed
run updates ``*_success`` and ``*_last_run_timestamp_seconds`` but leaves
``*_last_success_timestamp_seconds`` as it was: alert on ``time() - last_success > threshold``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.redact import redact

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


@dataclass
class Family:
    name: str
    help: str = ""
    type: str = "gauge"
    samples: dict[str, str] = field(default_factory=dict)  # rendered labels ("" or '{a="b"}') -> value


def labels(**values: str) -> str:
    """Rendered label set, e.g. ``{phase="data",repository="/backups/letta"}``."""
    if not values:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(values.items())) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse(text: str) -> dict[str, Family]:
    """The families of an exposition-format text (only what we need: HELP, TYPE, samples)."""
    families: dict[str, Family] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                continue
            family = families.setdefault(parts[2], Family(parts[2]))
            if parts[1] == "HELP":
                family.help = parts[3]
            else:
                family.type = parts[3]
        elif (match := _SAMPLE.match(line)) is not None:
            name, label_text, value = match.groups()
            families.setdefault(name, Family(name)).samples[label_text or ""] = value
    return families


def render(families: dict[str, Family]) -> str:
    lines = []
    for name in sorted(families):
        family = families[name]
        if not family.samples:
            continue
        if family.help:
            lines.append(f"# HELP {name} {family.help}")
        lines.append(f"# TYPE {name} {family.type}")
        lines += [f"{name}{label_text} {value}" for label_text, value in sorted(family.samples.items())]
    return "\n".join(lines) + "\n"


def update_file(path: Path, updates: list[Family]) -> None:
    """Merge ``updates`` into the textfile at ``path`` (created if missing), atomically."""
    existing = parse(path.read_text()) if path.exists() else {}
    for update in updates:
        family = existing.setdefault(update.name, Family(update.name))
        family.help = update.help or family.help
        family.type = update.type
        family.samples.update(update.samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(redact(render(existing)))  # labels carry the repository location
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _number(value: float | int) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def gauge(name: str, help_text: str, value: float | int, label_text: str) -> Family:
    return Family(name, help_text, "gauge", {label_text: _number(value)})


def backup_metrics(
    repository: str,
    *,
    success: bool,
    seconds: float,
    bytes_added: int | None = None,
    raw_bytes: int | None = None,
    snapshots: int | None = None,
    now: float | None = None,
) -> list[Family]:
    """The families ``backup --metrics-file`` writes for one run."""
    now = time.time() if now is None else now
    lab = labels(repository=repository)
    families = [
        gauge("lifeboat_backup_success", "1 if the last backup succeeded, else 0.", int(success), lab),
        gauge("lifeboat_backup_last_run_timestamp_seconds", "Unix time the last backup ended.", now, lab),
        gauge("lifeboat_backup_duration_seconds", "Duration of the last backup.", round(seconds, 3), lab),
    ]
    if success:
        families.append(
            gauge(
                "lifeboat_backup_last_success_timestamp_seconds",
                "Unix time of the last successful backup.",
                now,
                lab,
            )
        )
    if bytes_added is not None:
        families.append(
            gauge(
                "lifeboat_backup_bytes_added",
                "Bytes the last backup added to the repository.",
                bytes_added,
                lab,
            )
        )
    if raw_bytes is not None:
        families.append(
            gauge("lifeboat_backup_raw_bytes", "Table data bytes the last backup read.", raw_bytes, lab)
        )
    if snapshots is not None:
        families.append(
            gauge("lifeboat_repository_snapshots", "Snapshots in the repository.", snapshots, lab)
        )
    return families


def drill_metrics(
    repository: str,
    *,
    success: bool,
    seconds: float,
    rto_seconds: float | None,
    phases: dict[str, float],
    now: float | None = None,
) -> list[Family]:
    """The families ``drill --metrics-file`` writes for one drill."""
    now = time.time() if now is None else now
    lab = labels(repository=repository)
    families = [
        gauge("lifeboat_drill_success", "1 if the last restore drill passed, else 0.", int(success), lab),
        gauge("lifeboat_drill_last_run_timestamp_seconds", "Unix time the last drill ended.", now, lab),
        gauge(
            "lifeboat_drill_duration_seconds",
            "Wall time of the last drill, all phases.",
            round(seconds, 3),
            lab,
        ),
    ]
    if success:
        families.append(
            gauge(
                "lifeboat_drill_last_success_timestamp_seconds",
                "Unix time of the last passed drill.",
                now,
                lab,
            )
        )
    if rto_seconds is not None:
        families.append(
            gauge(
                "lifeboat_drill_rto_seconds",
                "Restore time measured by the last drill.",
                round(rto_seconds, 3),
                lab,
            )
        )
    phase_family = Family(
        "lifeboat_drill_phase_seconds", "Duration of each phase of the last drill.", "gauge"
    )
    for phase, value in phases.items():
        phase_family.samples[labels(repository=repository, phase=phase)] = _number(round(value, 3))
    families.append(phase_family)
    return families


@contextlib.contextmanager
def recording_backup(path: Path | None, repo_flag: str | None) -> Iterator[Callable[[Any, Any], None]]:
    """Around a backup: ``record(result, repository)`` on success; failure metrics if it raises.

    No-op without ``path``. The metrics are written after the backup, so a metrics-file problem
    never costs a backup (it is reported as the command's error afterwards).
    """
    started = time.monotonic()
    recorded: dict[str, Any] = {}

    def record(result: Any, repository: Any) -> None:
        recorded.update(result=result, repository=repository)

    if path is None:
        yield record
        return
    try:
        yield record
    except BaseException:
        update_file(
            path,
            backup_metrics(_repository_label(repo_flag), success=False, seconds=time.monotonic() - started),
        )
        raise
    result, repository = recorded["result"], recorded["repository"]
    summary = result.summary()
    update_file(
        path,
        backup_metrics(
            repository.backend.url,
            success=True,
            seconds=result.seconds,
            bytes_added=summary["bytes_added"],
            raw_bytes=summary["raw_bytes"],
            snapshots=len(repository.snapshot_ids()),
        ),
    )


def _repository_label(repo_flag: str | None) -> str:
    from lifeboat import settings
    from lifeboat.errors import LifeboatError

    try:
        return settings.repository_url(repo_flag)
    except LifeboatError:
        return "unknown"
