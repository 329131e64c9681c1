"""The retention planner (pure): which of a policy's snapshots of one VM it keeps.

The rules are restic's and borg's `forget --keep-last/--keep-daily/--keep-weekly/
--keep-monthly`:

- `keepLast` N: the N newest snapshots;
- `keepDaily` N: for each of the N newest days (UTC) that have a snapshot, the newest
  snapshot of that day; days without one do not count;
- `keepWeekly` N: the same per ISO week (Monday to Sunday), `keepMonthly` N per calendar
  month.

Each rule is applied on its own to the whole list, newest first; a snapshot kept by several
rules counts for each (as in restic), and everything no rule keeps is deleted. So the newest
snapshot is always kept (it is the first of its day, week and month, and the first of the
last N), and a retention that keeps nothing is refused before it gets here (the planner then
keeps everything rather than delete all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

Bucket = Callable[[datetime], object]


@dataclass(frozen=True)
class Retention:
    """How many snapshots each rule keeps (0: the rule keeps none)."""

    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    @property
    def keeps_anything(self) -> bool:
        return any(count > 0 for count in
                   (self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly))


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as retention sees it: a name and when it was taken."""

    name: str
    taken: datetime


@dataclass(frozen=True)
class RetentionPlan:
    """The planner's answer: what is kept (with the rules that keep each), what goes."""

    keep: tuple[str, ...]  # newest first
    delete: tuple[str, ...]  # newest first
    reasons: dict[str, tuple[str, ...]]  # kept name -> rules ("last", "daily", ...)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(moment: datetime) -> object:
    return _utc(moment).date()


def _week(moment: datetime) -> object:
    year, week, _ = _utc(moment).isocalendar()
    return (year, week)


def _month(moment: datetime) -> object:
    utc = _utc(moment)
    return (utc.year, utc.month)


#: Every snapshot is its own bucket for keepLast.
_RULES: Final[tuple[tuple[str, Bucket | None], ...]] = (
    ("last", None),
    ("daily", _day),
    ("weekly", _week),
    ("monthly", _month),
)


def newest_first(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """Newest first; equal times by name, descending, so the order is total."""
    return sorted(snapshots, key=lambda snapshot: (_utc(snapshot.taken), snapshot.name),
                  reverse=True)


def plan_retention(snapshots: Sequence[Snapshot], retention: Retention) -> RetentionPlan:
    """Which snapshots the retention keeps and which it deletes."""
    ordered = newest_first(snapshots)
    if not retention.keeps_anything:
        names = tuple(snapshot.name for snapshot in ordered)
        return RetentionPlan(names, (), {name: ("all",) for name in names})
    counts = {
        "last": retention.keep_last,
        "daily": retention.keep_daily,
        "weekly": retention.keep_weekly,
        "monthly": retention.keep_monthly,
    }
    reasons: dict[str, list[str]] = {}
    for rule, bucket_of in _RULES:
        remaining = counts[rule]
        last_bucket: object = object()
        for snapshot in ordered:
            if remaining <= 0:
                break
            bucket = snapshot.name if bucket_of is None else bucket_of(snapshot.taken)
            if bucket == last_bucket:
                continue  # an older snapshot of a period already kept
            last_bucket = bucket
            reasons.setdefault(snapshot.name, []).append(rule)
            remaining -= 1
    keep = tuple(snapshot.name for snapshot in ordered if snapshot.name in reasons)
    delete = tuple(snapshot.name for snapshot in ordered if snapshot.name not in reasons)
    return RetentionPlan(keep, delete, {name: tuple(rules) for name, rules in reasons.items()})
