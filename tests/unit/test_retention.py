"""The retention planner (restic's `forget --keep-*` rules): worked examples, and properties
on random snapshot histories (hypothesis): the newest is never deleted, the keepLast newest
are all kept, each snapshot kept for a day/week/month is the newest of that period and there
are as many such periods as asked (or as exist), and planning the kept set again deletes
nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.backuppolicy.retention import (
    Retention,
    Snapshot,
    newest_first,
    plan_retention,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def at(day: int, hour: int = 12) -> datetime:
    return START + timedelta(days=day, hours=hour)


def test_keep_last_keeps_the_newest_n() -> None:
    snapshots = [Snapshot(f"s{i}", at(0, i)) for i in range(6)]
    plan = plan_retention(snapshots, Retention(keep_last=3))
    assert plan.keep == ("s5", "s4", "s3")
    assert plan.delete == ("s2", "s1", "s0")


def test_keep_daily_keeps_the_newest_of_each_day_and_skips_empty_days() -> None:
    # Two a day on days 0, 1 and 3 (none on day 2).
    snapshots = [Snapshot(f"d{day}h{hour}", at(day, hour)) for day in (0, 1, 3)
                 for hour in (6, 18)]
    plan = plan_retention(snapshots, Retention(keep_daily=2))
    assert plan.keep == ("d3h18", "d1h18")  # day 2 has none: days 3 and 1 are the newest two
    assert set(plan.delete) == {"d3h6", "d1h6", "d0h18", "d0h6"}


def test_rules_add_up_as_restic_does() -> None:
    # One a day for 40 days: keepLast 2 + keepDaily 3 overlap (the newest two days), keepWeekly 2
    # adds the newest of the week before, keepMonthly 2 the newest of the month before.
    snapshots = [Snapshot(f"day{day:02d}", at(day)) for day in range(40)]
    plan = plan_retention(snapshots, Retention(keep_last=2, keep_daily=3, keep_weekly=2,
                                               keep_monthly=2))
    # Day 39 is 2026-02-09 (a Monday: ISO week 7); week 6 ends Sunday 2026-02-08 (day 38).
    assert plan.keep == ("day39", "day38", "day37", "day30")
    assert plan.reasons["day39"] == ("last", "daily", "weekly", "monthly")
    assert plan.reasons["day38"] == ("last", "daily", "weekly")
    assert plan.reasons["day37"] == ("daily",)
    assert plan.reasons["day30"] == ("monthly",)  # 2026-01-31: the newest of January


def test_a_retention_that_keeps_nothing_deletes_nothing() -> None:
    snapshots = [Snapshot("a", at(0)), Snapshot("b", at(1))]
    plan = plan_retention(snapshots, Retention())
    assert plan.delete == ()
    assert plan.keep == ("b", "a")


def test_no_snapshots_no_plan() -> None:
    plan = plan_retention([], Retention(keep_last=1))
    assert plan.keep == () and plan.delete == ()


# --------------------------------------------------------------------------- properties

histories = st.lists(
    st.integers(min_value=0, max_value=200 * 24 * 60),  # minutes over 200 days
    min_size=0, max_size=60, unique=True,
).map(lambda minutes: [Snapshot(f"snap-{m}", START + timedelta(minutes=m)) for m in minutes])
retentions = st.builds(
    Retention,
    keep_last=st.integers(0, 5),
    keep_daily=st.integers(0, 7),
    keep_weekly=st.integers(0, 5),
    keep_monthly=st.integers(0, 4),
).filter(lambda retention: retention.keeps_anything)


def _period_newest(snapshots: list[Snapshot], period: object) -> dict[object, str]:
    newest: dict[object, str] = {}
    for snapshot in newest_first(snapshots):
        newest.setdefault(period(snapshot.taken), snapshot.name)  # type: ignore[operator]
    return newest


PERIODS = {
    "daily": (lambda t: t.date(), "keep_daily"),
    "weekly": (lambda t: t.isocalendar()[:2], "keep_weekly"),
    "monthly": (lambda t: (t.year, t.month), "keep_monthly"),
}


@settings(max_examples=300, deadline=None)
@given(histories, retentions)
def test_planner_properties(snapshots: list[Snapshot], retention: Retention) -> None:
    plan = plan_retention(snapshots, retention)
    names = [s.name for s in newest_first(snapshots)]
    # Everything is either kept or deleted, never both.
    assert set(plan.keep) | set(plan.delete) == set(names)
    assert not set(plan.keep) & set(plan.delete)
    if names:
        assert names[0] in plan.keep  # never deletes the newest
    # The keepLast newest, exactly, are kept for "last".
    assert [n for n in names if "last" in plan.reasons.get(n, ())] == \
        names[: retention.keep_last]
    for rule, (period, field) in PERIODS.items():
        newest = _period_newest(snapshots, period)
        kept_for_rule = [n for n in names if rule in plan.reasons.get(n, ())]
        # Each kept for the period is the newest of its period...
        assert all(name in newest.values() for name in kept_for_rule)
        # ... of the N newest periods that have a snapshot.
        wanted = getattr(retention, field)
        newest_periods = list(newest.values())[:wanted]
        assert kept_for_rule == newest_periods
    # Applying the retention again to what it kept deletes nothing.
    kept = [s for s in snapshots if s.name in plan.keep]
    assert plan_retention(kept, retention).delete == ()


@settings(max_examples=100, deadline=None)
@given(histories, retentions)
def test_plan_is_the_same_whatever_the_input_order(snapshots: list[Snapshot],
                                                   retention: Retention) -> None:
    assert plan_retention(snapshots, retention) == plan_retention(snapshots[::-1], retention)
