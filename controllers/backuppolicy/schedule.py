"""When a BackupPolicy runs (pure): its cron schedule, read with croniter.

Five fields are standard cron (minute hour day-of-month month day-of-week); a sixth field,
seconds, may follow as croniter reads it (`* * * * * */10`: every ten seconds), and the
macros @hourly, @daily, @weekly, @monthly and @yearly are accepted.
Times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter


class ScheduleError(ValueError):
    """The schedule does not parse as cron."""


def check_schedule(schedule: str) -> str:
    """The schedule, or ScheduleError saying why it is not cron."""
    text = schedule.strip()
    fields = text.split()
    if not text.startswith("@") and len(fields) not in (5, 6):
        raise ScheduleError(
            f'"{schedule}" is not a cron schedule: it has {len(fields)} fields, cron has 5 '
            "(minute hour day-of-month month day-of-week) and an optional 6th (seconds)")
    if not croniter.is_valid(text):
        raise ScheduleError(f'"{schedule}" is not a cron schedule')
    return text


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time after `after` the schedule names (UTC)."""
    start = after.astimezone(UTC) if after.tzinfo else after.replace(tzinfo=UTC)
    result: datetime = croniter(check_schedule(schedule), start).get_next(datetime)
    return result.astimezone(UTC)


def due_runs(schedule: str, since: datetime, now: datetime) -> bool:
    """Whether the schedule names a time in (since, now]."""
    return next_run(schedule, since) <= now
