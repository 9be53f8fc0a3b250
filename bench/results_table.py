"""Markdown tables from bench/backup_restore.py's JSON results (for BENCHMARKS.md).

.venv/bin/python bench/results_table.py results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from backup_restore import linearity, ratios

ROWS = (
    ("raw_copy_1conn", "raw COPY of every table, 1 connection"),
    ("raw_copy_2conn", "raw COPY, 2 connections"),
    ("lifeboat_backup", "**lifeboat backup** (2 jobs, encrypted, local directory)"),
    ("s3_lifeboat_backup", "lifeboat backup to S3 (moto)"),
    ("s3ranged_lifeboat_backup", "lifeboat backup to S3 (moto, ranged GETs fixed)"),
    ("lifeboat_backup_incremental", "lifeboat backup after 1 % of agents changed"),
    ("pg_dump_Fc", "`pg_dump -Fc`"),
    ("pg_dump_Fd_j2", "`pg_dump -Fd -j2`"),
    ("pg_restore_j2", "`pg_restore -j2` (of the -Fc dump)"),
    ("lifeboat_restore", "**lifeboat restore** (full, local directory)"),
    ("s3_lifeboat_restore", "lifeboat restore from S3 (moto)"),
    ("s3ranged_lifeboat_restore", "lifeboat restore from S3 (moto, ranged GETs fixed)"),
    ("lifeboat_restore_one_agent", "lifeboat restore --agent (one agent, in place)"),
)


def cell(value: Any, unit: str = "") -> str:
    return "" if value is None else f"{value}{unit}"


def runs_table(results: dict[str, Any]) -> str:
    """One row per command, one column group (seconds, peak RSS) per scale."""
    scales = results["scales"]
    head = "| what | " + " | ".join(f"{label} s | {label} RSS MB" for label in scales) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(scales)]
    for key, name in ROWS:
        cells = []
        for scale in scales.values():
            run = scale["runs"].get(key, {})
            cells += [cell(run.get("seconds")), cell(run.get("peak_rss_mb"))]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def facts_table(results: dict[str, Any]) -> str:
    """Per scale: size, load, incremental and one-agent details, S3 server's CPU."""
    keys = (
        ("database GB", lambda s: s["database_gb"]),
        ("agents / messages", lambda s: f"{s['dataset']['agents']:,} / {s['dataset']['messages']:,}"),
        ("build s", lambda s: s["dataset"]["build_seconds"]),
        ("load at start / end", lambda s: f"{s['load_average_before'][0]} / {s['load_average_after'][0]}"),
        ("agents changed", lambda s: s["runs"]["lifeboat_backup_incremental"]["changed"]["agents_changed"]),
        (
            "incremental runs s (median is the row)",
            lambda s: _samples(s["runs"]["lifeboat_backup_incremental"]),
        ),
        ("repository MB", lambda s: round(s["runs"]["repo_bytes"] / 1e6, 1)),
        ("pg_dump -Fc MB", lambda s: round(s["runs"]["pg_dump_Fc"]["bytes"] / 1e6, 1)),
        ("moto CPU s (backup / restore)", lambda s: _moto_cpu(s, "s3")),
        ("moto peak RSS MB", lambda s: s["runs"].get("s3_server_peak_rss_mb")),
        ("moto-ranged CPU s (backup / restore)", lambda s: _moto_cpu(s, "s3ranged")),
        ("moto-ranged peak RSS MB", lambda s: s["runs"].get("s3ranged_server_peak_rss_mb")),
        ("skipped", lambda s: "; ".join(s["skipped"]) or "—"),
    )
    scales = results["scales"]
    lines = ["| | " + " | ".join(scales) + " |", "|---|" + "---:|" * len(scales)]
    for name, get in keys:
        lines.append(f"| {name} | " + " | ".join(cell(_safe(get, s)) for s in scales.values()) + " |")
    return "\n".join(lines)


def _samples(run: dict[str, Any]) -> str | None:
    """Each incremental's wall seconds (its CPU, client + server) in the order they ran; None for a
    run from before the median of several (one incremental then)."""
    if "samples_seconds" not in run:
        return None
    return " / ".join(f"{s} ({c})" for s, c in zip(run["samples_seconds"], run["samples_cpu"], strict=True))


def _moto_cpu(scale: dict[str, Any], prefix: str) -> str | None:
    runs = scale["runs"]
    if f"{prefix}_lifeboat_backup" not in runs:
        return None
    backup, restore = runs[f"{prefix}_lifeboat_backup"], runs[f"{prefix}_lifeboat_restore"]
    return f"{backup['s3_server_cpu']} / {restore['s3_server_cpu']}"


def _safe(get: Any, scale: dict[str, Any]) -> Any:
    try:
        return get(scale)
    except (KeyError, TypeError):
        return None


def ratios_table(results: dict[str, Any]) -> str:
    scales = results["scales"]
    names = sorted({name for s in scales.values() for name in s["ratios"]})
    lines = ["| ratio | " + " | ".join(scales) + " |", "|---|" + "---:|" * len(scales)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(s["ratios"].get(name)) for s in scales.values()) + " |")
    return "\n".join(lines)


def linearity_table(results: dict[str, Any]) -> str:
    rows = linearity(results["scales"])  # recomputed: also for a run that has not finished
    names = list(dict.fromkeys(k for row in rows.values() for k in row if k != "peak_rss_mb"))
    lines = ["| | " + " | ".join(rows) + " |", "|---|" + "---:|" * len(rows)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(r.get(name)) for r in rows.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    for scale in results["scales"].values():  # recomputed, so older results get the newer ratios too
        scale["ratios"] = ratios(scale["runs"])
    bytecode = results.get("bytecode", "compiled on every run (PYTHONDONTWRITEBYTECODE)")
    print(f"code {results['code']}, machine {json.dumps(results['machine'])}, bytecode: {bytecode}\n")
    for table in (runs_table, facts_table, ratios_table, linearity_table):
        print(table(results) + "\n")


if __name__ == "__main__":
    main()
