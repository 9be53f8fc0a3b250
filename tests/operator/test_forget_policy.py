"""forget keeps exactly the right snapshots: restic's semantics, table-driven over timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lifeboat.errors import UsageError
from lifeboat.repo.retention import Policy, SnapshotInfo, apply_policy, plan_forget


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def snaps(*times: str, tags: tuple[str, ...] = ()) -> list[SnapshotInfo]:
    return [SnapshotInfo(id=t, time=at(t), tags=tags) for t in times]


CASES = [
    pytest.param(
        Policy(last=3),
        ["2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 03:00", "2024-01-01 04:00", "2024-01-01 05:00"],
        {"2024-01-01 03:00", "2024-01-01 04:00", "2024-01-01 05:00"},
        id="last-3",
    ),
    pytest.param(
        Policy(daily=2),
        ["2024-01-01 09:00", "2024-01-01 21:00", "2024-01-02 09:00", "2024-01-02 21:00", "2024-01-03 09:00"],
        {"2024-01-03 09:00", "2024-01-02 21:00"},
        id="daily-2-newest-of-each-day",
    ),
    pytest.param(
        Policy(daily=5),
        ["2024-01-01 09:00", "2024-01-01 21:00", "2024-01-02 09:00", "2024-01-02 21:00", "2024-01-03 09:00"],
        {"2024-01-03 09:00", "2024-01-02 21:00", "2024-01-01 21:00", "2024-01-01 09:00"},
        id="daily-5-counts-left-keeps-the-oldest",
    ),
    pytest.param(
        Policy(hourly=2, daily=2),
        ["2024-01-01 10:00", "2024-01-01 10:30", "2024-01-01 11:15", "2024-01-02 08:00", "2024-01-02 08:45"],
        {"2024-01-02 08:45", "2024-01-01 11:15"},
        id="hourly-and-daily",
    ),
    pytest.param(
        Policy(weekly=2),
        ["2023-12-31 12:00", "2024-01-01 12:00", "2024-01-07 12:00", "2024-01-08 12:00", "2024-01-10 12:00"],
        {"2024-01-10 12:00", "2024-01-07 12:00"},
        id="weekly-iso-weeks",
    ),
    pytest.param(
        Policy(monthly=3),
        ["2024-01-15 12:00", "2024-01-31 12:00", "2024-02-01 12:00", "2024-03-10 12:00"],
        {"2024-03-10 12:00", "2024-02-01 12:00", "2024-01-31 12:00"},
        id="monthly-3",
    ),
    pytest.param(
        Policy(last=1, monthly=2),
        ["2024-02-20 12:00", "2024-03-05 12:00", "2024-03-10 12:00"],
        {"2024-03-10 12:00", "2024-02-20 12:00"},
        id="last-and-monthly-overlap",
    ),
    pytest.param(
        Policy(yearly=2),
        ["2022-06-01 00:00", "2023-01-01 00:00", "2023-12-31 23:59", "2024-05-01 00:00"],
        {"2024-05-01 00:00", "2023-12-31 23:59"},
        id="yearly-2",
    ),
    pytest.param(
        Policy(daily=-1),
        ["2024-01-01 09:00", "2024-01-01 21:00", "2024-01-02 09:00", "2024-01-02 10:00"],
        {"2024-01-02 10:00", "2024-01-01 21:00", "2024-01-01 09:00"},
        id="daily-unlimited",
    ),
    pytest.param(
        Policy(within=timedelta(days=2)),
        ["2024-01-08 11:00", "2024-01-08 13:00", "2024-01-09 00:00", "2024-01-10 12:00"],
        {"2024-01-08 13:00", "2024-01-09 00:00", "2024-01-10 12:00"},
        id="within-2-days-of-newest",
    ),
    pytest.param(
        Policy(daily=7),
        ["2024-01-05 03:00"],
        {"2024-01-05 03:00"},
        id="single-snapshot",
    ),
]


@pytest.mark.parametrize(("policy", "times", "expected"), CASES)
def test_policy_keeps_exactly(policy: Policy, times: list[str], expected: set[str]) -> None:
    decisions = apply_policy(snaps(*times), policy, UTC)
    assert {d.snapshot.id for d in decisions if d.keep} == expected
    assert [d.snapshot.id for d in decisions] == sorted(times, reverse=True)  # newest first
    assert all(d.reasons for d in decisions if d.keep)


def test_periods_are_taken_in_the_given_time_zone() -> None:
    times = ["2024-01-01 20:00", "2024-01-01 21:30", "2024-01-01 23:30"]
    utc = {d.snapshot.id for d in apply_policy(snaps(*times), Policy(daily=2), UTC) if d.keep}
    plus2 = timezone(timedelta(hours=2))
    local = {d.snapshot.id for d in apply_policy(snaps(*times), Policy(daily=2), plus2) if d.keep}
    assert utc == {"2024-01-01 23:30", "2024-01-01 20:00"}  # one day in UTC: newest + oldest
    assert local == {"2024-01-01 23:30", "2024-01-01 21:30"}  # 23:30Z is already Jan 2 at UTC+2


def test_keep_tag_and_reasons() -> None:
    items = [
        SnapshotInfo("a", at("2024-01-01 00:00"), tags=("safety",)),
        SnapshotInfo("b", at("2024-01-02 00:00")),
        SnapshotInfo("c", at("2024-01-03 00:00")),
    ]
    decisions = {d.snapshot.id: d for d in apply_policy(items, Policy(last=1, tags=("safety",)), UTC)}
    assert [k for k, d in decisions.items() if d.keep] == ["c", "a"]
    assert decisions["a"].reasons == ["has tag safety"]
    assert decisions["c"].reasons == ["last snapshot"]


def test_tag_filter_and_groups() -> None:
    items = [
        SnapshotInfo("n1", at("2024-01-01 00:00"), "h1", "letta", ("nightly",)),
        SnapshotInfo("m1", at("2024-01-02 00:00"), "h1", "letta", ("manual",)),
        SnapshotInfo("n2", at("2024-01-01 12:00"), "h1", "letta", ("nightly", "db")),
        SnapshotInfo("x1", at("2024-01-01 06:00"), "h2", "letta", ("nightly",)),
        SnapshotInfo("x2", at("2024-01-01 07:00"), "h2", "letta", ("nightly",)),
    ]
    groups = plan_forget(items, Policy(last=1), tz=UTC, tag_filters=["nightly"])
    by_host = {g.key["host"]: g for g in groups}
    assert [s.id for s in by_host["h1"].keep] == ["n2"]
    assert [s.id for s in by_host["h1"].remove] == ["n1"]  # m1 is not nightly: untouched
    assert [s.id for s in by_host["h2"].keep] == ["x2"]
    both = plan_forget(items, Policy(last=1), tz=UTC, tag_filters=["nightly,db"], group_by=())
    assert [(g.key, [s.id for s in g.keep], [s.id for s in g.remove]) for g in both] == [({}, ["n2"], [])]


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(UsageError, match="no retention rule"):
        apply_policy(snaps("2024-01-01 00:00"), Policy(), UTC)
