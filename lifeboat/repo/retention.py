"""Retention policies (``forget``): which snapshots to keep, with restic's semantics.

Snapshots are grouped (by default by host and source database), then each group is walked
newest first. Every ``keep_*`` rule is a bucket with a count: a snapshot is kept by a rule when
its time falls in a different period (hour, day, ISO week, month, year) than the last snapshot
that rule kept, while the rule still has counts left. So ``keep_daily=7`` keeps the newest
snapshot of each of the last 7 days *that have snapshots* (not of the last 7 calendar days).
As in restic (since 0.14), when a rule still has counts left at the oldest snapshot of a group,
that oldest snapshot is kept too, which makes the kept history as long as possible.
``keep_last`` keeps the n newest; ``keep_within`` keeps everything newer than the group's
newest snapshot minus the duration; ``keep_tags`` keeps every snapshot carrying one of them.

A snapshot is forgotten when no rule keeps it. Periods are computed in ``tz`` (the operator's
local time zone in the CLI; tests pass UTC). This module only decides; deleting is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from lifeboat.errors import UsageError
from lifeboat.repo.filters import tags_match

GROUP_FIELDS = ("host", "database", "tags")


@dataclass(frozen=True)
class SnapshotInfo:
    """What a retention decision needs from a snapshot."""

    id: str
    time: datetime
    hostname: str = ""
    database: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """Counts per rule (0 = rule unused, -1 = unlimited), as restic's ``--keep-*`` options."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: timedelta | None = None
    tags: tuple[str, ...] = ()

    def empty(self) -> bool:
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        return not any(counts) and self.within is None and not self.tags

    def describe(self) -> str:
        parts = [
            f"keep {'all' if count == -1 else count} {name}"
            for name, count in (
                ("last", self.last),
                ("hourly", self.hourly),
                ("daily", self.daily),
                ("weekly", self.weekly),
                ("monthly", self.monthly),
                ("yearly", self.yearly),
            )
            if count
        ]
        if self.within is not None:
            parts.append(f"keep within {self.within}")
        parts += [f"keep tag {tag}" for tag in self.tags]
        return ", ".join(parts) or "no rules"


@dataclass
class Decision:
    snapshot: SnapshotInfo
    keep: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class GroupDecision:
    """One group's snapshots, newest first, each with its decision."""

    key: dict[str, str]
    decisions: list[Decision]

    @property
    def keep(self) -> list[SnapshotInfo]:
        return [d.snapshot for d in self.decisions if d.keep]

    @property
    def remove(self) -> list[SnapshotInfo]:
        return [d.snapshot for d in self.decisions if not d.keep]


Bucketer = Callable[[datetime, int], object]

_BUCKETS: tuple[tuple[str, str, Bucketer], ...] = (
    ("last", "last snapshot", lambda t, nr: nr),
    ("hourly", "hourly snapshot", lambda t, nr: (t.year, t.month, t.day, t.hour)),
    ("daily", "daily snapshot", lambda t, nr: (t.year, t.month, t.day)),
    ("weekly", "weekly snapshot", lambda t, nr: t.isocalendar()[:2]),
    ("monthly", "monthly snapshot", lambda t, nr: (t.year, t.month)),
    ("yearly", "yearly snapshot", lambda t, nr: t.year),
)


def apply_policy(snapshots: Sequence[SnapshotInfo], policy: Policy, tz: tzinfo) -> list[Decision]:
    """Decide for one group of snapshots; returns the decisions newest first."""
    if policy.empty():
        raise UsageError("no retention rule given (e.g. --keep-daily 7); refusing to forget every snapshot")
    ordered = sorted(snapshots, key=lambda s: (s.time, s.id), reverse=True)
    counts = {name: getattr(policy, name) for name, _, _ in _BUCKETS}
    last_value: dict[str, object] = {}
    newest = ordered[0].time if ordered else None
    decisions = []
    for nr, snapshot in enumerate(ordered):
        local = snapshot.time.astimezone(tz)
        reasons = [f"has tag {tag}" for tag in policy.tags if tag in snapshot.tags]
        if policy.within is not None and newest is not None and snapshot.time > newest - policy.within:
            reasons.append(f"within {policy.within} of the newest")
        for name, reason, bucket in _BUCKETS:
            if counts[name] == 0:
                continue
            value = bucket(local, nr)
            new_period = name not in last_value or value != last_value[name]
            if new_period or nr == len(ordered) - 1:
                last_value[name] = value
                if counts[name] > 0:
                    counts[name] -= 1
                reasons.append(reason if new_period else f"oldest, {reason} rule has counts left")
        decisions.append(Decision(snapshot, bool(reasons), reasons))
    return decisions


def group_key(snapshot: SnapshotInfo, group_by: Iterable[str]) -> dict[str, str]:
    key = {}
    for name in group_by:
        if name == "host":
            key["host"] = snapshot.hostname
        elif name == "database":
            key["database"] = snapshot.database
        elif name == "tags":
            key["tags"] = ",".join(sorted(snapshot.tags))
        else:
            raise UsageError(f"cannot group by {name!r}; choose from {', '.join(GROUP_FIELDS)}")
    return key


def matches_tags(snapshot: SnapshotInfo, tag_filters: Sequence[str]) -> bool:
    """restic's ``--tag`` filter (:func:`lifeboat.repo.filters.tags_match`)."""
    return tags_match(snapshot.tags, tag_filters)


def plan_forget(
    snapshots: Sequence[SnapshotInfo],
    policy: Policy,
    *,
    tz: tzinfo,
    group_by: Sequence[str] = ("host", "database"),
    tag_filters: Sequence[str] = (),
) -> list[GroupDecision]:
    """Group the snapshots that pass ``tag_filters`` and apply ``policy`` to each group.

    Snapshots that do not pass the filter are not part of any group and are never removed.
    """
    groups: dict[tuple[tuple[str, str], ...], list[SnapshotInfo]] = {}
    for snapshot in snapshots:
        if matches_tags(snapshot, tag_filters):
            key = tuple(group_key(snapshot, group_by).items())
            groups.setdefault(key, []).append(snapshot)
    return [
        GroupDecision(dict(key), apply_policy(members, policy, tz)) for key, members in sorted(groups.items())
    ]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``26h``, ``7d``, ``2w``, ``1y``, or combinations like ``1d12h``."""
    import re

    parts = re.findall(r"(\d+)([smhdwy])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise UsageError(f"cannot read duration {text!r}: use e.g. 90s, 30m, 26h, 7d, 2w, 1y or 1d12h")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
