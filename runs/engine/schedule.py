"""When scheduled jobs fire: Quartz cron slots in a time zone, and periodic triggers. Pure.

Every instant in and out is an aware datetime; results are in UTC.

Cron slots and daylight saving time. croniter walks the schedule in the zone's naive wall-clock
time, and each wall time becomes one instant:
- a wall time that exists once is that instant;
- a repeated wall time (fall back) is its FIRST occurrence only: the second pass of the repeated
  hour fires nothing, so nothing fires twice;
- a wall time that does not exist (spring forward) fires when the gap ends, e.g. 02:30 on the
  spring-forward night in Europe/Berlin fires at 03:00 CEST (01:00 UTC), so nothing is lost;
- several wall times that land on one instant (every 15 minutes through a gap) fire once:
  slots are strictly increasing instants.
The wall -> instant map never goes backwards, which is what lets next_slot and latest_slot start
croniter at one wall time and take its first answer.

The year field and the day-of-month rules croniter lacks (`L-n`, `LW`) are applied here by
skipping the candidates croniter yields, a whole day or year at a time. Databricks' 10-second
minimum between scheduled runs is the scheduler's business, not this module's.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Iterator
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from jobs.spec.cron import QuartzCron

UTC = timezone.utc
_TICK = timedelta(microseconds=1)
_DAY = timedelta(days=1)
# Give up on a schedule after this many years without a slot (croniter's own default).
_HORIZON = timedelta(days=50 * 366)
# Bounds the candidates skipped by the year and L-n/LW rules (at most ~5 per month).
_MAX_SKIPS = 5000

PERIODIC_UNITS = {
    "MINUTES": timedelta(minutes=1),
    "HOURS": timedelta(hours=1),
    "DAYS": timedelta(days=1),
    "WEEKS": timedelta(weeks=1),
}


# --- cron ------------------------------------------------------------------------


def next_slot(cron: QuartzCron, tz_name: str, after: datetime) -> datetime | None:
    """The first slot strictly after `after`; None only when the year field has run out."""
    zone = ZoneInfo(tz_name)
    for wall in _walls(cron, _last_wall_at_or_before(zone, _aware(after)), forward=True):
        instant = _instant_of(wall, zone)
        if instant > after:  # always true by monotonicity; kept as a guard against a repeat
            return instant
    return None


def latest_slot(cron: QuartzCron, tz_name: str, at_or_before: datetime) -> datetime | None:
    """The last slot at or before the instant (after downtime, only this one fires); None if
    there is none within about 50 years."""
    zone = ZoneInfo(tz_name)
    start = _last_wall_at_or_before(zone, _aware(at_or_before)) + _TICK
    wall = next(_walls(cron, start, forward=False), None)
    return None if wall is None else _instant_of(wall, zone)


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{instant!r} must be timezone-aware")
    return instant


@functools.lru_cache(maxsize=4096)
def _template(expression: str) -> croniter:
    # Parsing costs ~0.2 ms and happens once per expression; callers iterate a copy, since
    # croniter keeps its position in the object and the template may be shared by threads.
    return croniter(expression, datetime(2000, 1, 1), ret_type=datetime, second_at_beginning=True)


def _walls(cron: QuartzCron, start: datetime, *, forward: bool) -> Iterator[datetime]:
    """Naive wall times of the schedule strictly after (or strictly before) `start`."""
    it = copy.copy(_template(cron.croniter_expression))
    step = it.get_next if forward else it.get_prev
    cursor = start
    for _ in range(_MAX_SKIPS):
        try:
            wall = step(datetime, start_time=cursor)
        except CroniterBadDateError:  # croniter found nothing within its 50 years
            return
        if abs(wall - start) > _HORIZON:
            return
        if not cron.allows_year(wall.year):
            year = cron.next_year(wall.year) if forward else cron.previous_year(wall.year)
            if year is None:
                return
            cursor = datetime(year, 1, 1) - _TICK if forward else datetime(year + 1, 1, 1)
        elif not cron.allows_day(wall.date()):
            midnight = datetime.combine(wall.date(), time())
            cursor = midnight + _DAY - _TICK if forward else midnight
        else:
            yield wall
            cursor = wall


def _instant_of(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a wall time fires at (see the module docstring)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # fold=0: first of a repeat
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=0 reads the wall with the offset before the jump (the later instant) and
    # fold=1 with the offset after it (the earlier one); the gap ends at the switch between.
    return _switch_between(zone, wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first)


def _switch_between(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The first instant in (before, after] with `after`'s UTC offset, to the second (tzdata
    transitions fall on whole seconds)."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _last_wall_at_or_before(zone: tzinfo, instant: datetime) -> datetime:
    """The wall time W such that exactly the walls <= W fire at or before `instant`."""
    local = instant.astimezone(zone)
    wall = local.replace(tzinfo=None)
    if not local.fold:
        return wall
    # Second pass of a repeated hour: every wall of that hour fired in the first pass, so the
    # bound is where the repeated walls end, just before the switch read with the old offset.
    first_pass = wall.replace(tzinfo=zone, fold=0)
    switch = _switch_between(zone, first_pass.astimezone(UTC), instant.astimezone(UTC))
    end_of_repeat = switch.astimezone(timezone(first_pass.utcoffset())).replace(tzinfo=None)
    return end_of_repeat - _TICK


# --- periodic triggers -----------------------------------------------------------


def periodic_next(interval: int, unit: str, anchor: datetime, after: datetime) -> datetime:
    """The first of anchor + k*interval (k >= 1) strictly after `after`.

    `anchor` is when the trigger was enabled; enabling does not itself fire (k = 0). Units are
    fixed lengths of time (a DAY is 24 hours), since a periodic trigger has no time zone.
    """
    step = _period(interval, unit)
    k = max(1, (_aware(after) - _aware(anchor)) // step + 1)
    return anchor.astimezone(UTC) + k * step


def periodic_latest(interval: int, unit: str, anchor: datetime,
                    at_or_before: datetime) -> datetime | None:
    """The last of anchor + k*interval (k >= 1) at or before the instant, or None."""
    step = _period(interval, unit)
    k = (_aware(at_or_before) - _aware(anchor)) // step
    return anchor.astimezone(UTC) + k * step if k >= 1 else None


def _period(interval: int, unit: str) -> timedelta:
    if unit not in PERIODIC_UNITS:
        raise ValueError(f"unit must be one of {', '.join(PERIODIC_UNITS)}, not {unit!r}")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be a whole number of at least 1, not {interval!r}")
    return interval * PERIODIC_UNITS[unit]


# --- the decision at a slot --------------------------------------------------------------------

MAX_MISSED_COUNTED = 1000


@dataclass(frozen=True)
class SlotDecision:
    """What the clock does with a schedule or periodic trigger that is due."""

    fire: datetime | None  # the slot to fire now; None: nothing came since the last one
    next_check: datetime | None
    missed: int = 0  # slots that came while no clock ran and will never fire
    reason: str = ""


def decide_slot(*, latest: datetime | None, following: datetime | None, last_fired: datetime | None,
                enabled_at: datetime, missed: int = 0, catch_up: datetime | None = None) -> SlotDecision:
    """Fire the latest slot that came, once; after downtime only that one (as Lakeflow does):
    the `missed` slots before it are skipped, and the reason says so.

    `catch_up`, the oldest slot that did not fire when the clock was away only briefly (a lease
    moving to another clock, a restart), fires first when it is older than `latest`: such slots
    fire late, in order, instead of being skipped; the trigger is then due again at once
    (next_check is `latest`, which has come) until it has caught up."""
    if latest is None or (last_fired is not None and latest <= last_fired) or latest < enabled_at:
        return SlotDecision(None, following)
    if catch_up is not None and catch_up < latest and (last_fired is None or catch_up > last_fired):
        return SlotDecision(catch_up, latest, 0, f"slot {catch_up:%Y-%m-%d %H:%M:%S} UTC came while no clock "
                                                 "ran (briefly); fired late, to catch up")
    reason = f"slot {latest:%Y-%m-%d %H:%M:%S} UTC came"
    if missed:
        more = "or more " if missed >= MAX_MISSED_COUNTED else ""
        reason += (f"; {missed} {more}earlier slot(s) came while no clock ran and are skipped: "
                   "after downtime only the latest fires")
    return SlotDecision(latest, following, missed, reason)


def missed_cron_slots(cron: QuartzCron, tz_name: str, since: datetime, latest: datetime) -> int:
    """Slots strictly between `since` and `latest` (at most MAX_MISSED_COUNTED)."""
    count, moment = 0, since
    while count < MAX_MISSED_COUNTED:
        moment = next_slot(cron, tz_name, moment)
        if moment is None or moment >= latest:
            return count
        count += 1
    return count


def missed_periodic_slots(interval: int, unit: str, since: datetime, latest: datetime) -> int:
    between = (_aware(latest) - _aware(since)) // _period(interval, unit) - 1
    return max(0, min(between, MAX_MISSED_COUNTED))
