"""Backfill arithmetic: the slots of a time range, which of them a reprocess policy runs, in
which order, what each slot's run is given, and how far a backfill has come. Pure.

Every instant in and out is an aware datetime; slots come out in UTC, oldest first.

Slots. A range is [start, end): a slot at `end` is not in it.
- A job with a schedule: the schedule's own slots (runs/engine/schedule.py), so a backfill slot
  is exactly the trigger time a scheduled run of it would have had, DST included: a wall time in
  the spring-forward gap (02:30 in Europe/Berlin) is the gap's end, 03:00 local; a repeated wall
  time on the fall-back night is its first occurrence only (an hourly schedule has 24 slots that
  day, not 25).
- An interval (`{"interval": n, "unit": HOURS | DAYS | WEEKS}`, for a job without a schedule or
  to override it), from `start` truncated to the second:
  - HOURS are elapsed time: start + k * n hours. Each hour of real time has its slot, so the
    fall-back day has 25 hourly slots and the spring-forward day 23, in any zone.
  - DAYS and WEEKS are calendar steps in the time zone: the wall-clock time of `start` every
    n days (7n for weeks), with the schedule's DST rules (a daily 02:30 on the spring-forward day
    is at 03:00 local; on the fall-back day it is the first 02:30). The first slot is the first
    at or after `start`.
- At most `limit` slots are worked out: the caller refuses a range that has more.

Policies, given the job's existing runs of the range's slots (scheduled runs by their slot,
earlier backfill runs by their trigger time), as (slot, run id, outcome) with outcome one of
"succeeded", "failed" (finished without success: failed, timed out, canceled, skipped) or
"unfinished":
- MISSING: slots with no run at all;
- FAILED: slots whose latest run (the highest run id) finished without success;
- ALL: every slot.

Parameters of a slot's run: the filled parameter gets the slot as an ISO date (`2024-03-31`) or
date-time (`2024-03-31T02:30:00`), per the form of that parameter's default, as wall time in the
backfill's time zone (a daily 00:00 Europe/Berlin slot fills `2024-03-31`, not the UTC date
before it). Extra job parameters may use `{{backfill.*}}` and `{{job.trigger.time.*}}`, which
are resolved per slot here (in UTC, as references always are), so the dry run shows what runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo

from jobs.spec.cron import QuartzCron, parse_quartz
from jobs.spec.refs import ReferenceContext, resolve
from runs.engine.schedule import next_slot
from runs.engine.states import FINISHED_LIFE_CYCLES, SUCCESSFUL_RESULTS

UTC = timezone.utc
_TICK = timedelta(microseconds=1)
INTERVAL_UNITS = ("HOURS", "DAYS", "WEEKS")


class ReprocessPolicy(StrEnum):
    MISSING = "MISSING"  # slots the job has no run for
    FAILED = "FAILED"  # slots whose latest run finished without success
    ALL = "ALL"


class Order(StrEnum):
    OLDEST_FIRST = "OLDEST_FIRST"
    NEWEST_FIRST = "NEWEST_FIRST"


class SlotState(StrEnum):
    """Where one slot of a backfill stands (its progress bar has one colour per state)."""

    NOT_STARTED = "not_started"  # no run yet
    QUEUED = "queued"  # its run waits in the job's queue, or a repair waits for the backfill's limit
    RUNNING = "running"
    DONE = "done"  # its run succeeded
    FAILED = "failed"  # its run finished without success (or was deleted)


SUCCEEDED, FAILED, UNFINISHED = "succeeded", "failed", "unfinished"


def outcome_of(life_cycle_state: str, result_state: str | None) -> str:
    """How a run counts for the policies and the progress: succeeded, failed (finished without
    success: failed, timed out, canceled, skipped) or unfinished (queued or running)."""
    if life_cycle_state not in FINISHED_LIFE_CYCLES:
        return UNFINISHED
    return SUCCEEDED if result_state in SUCCESSFUL_RESULTS else FAILED


# --- slots -------------------------------------------------------------------------------


def schedule_slots(cron: QuartzCron, tz_name: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The schedule's slots in [start, end), at most limit + 1 of them (one more says "too many")."""
    found: list[datetime] = []
    moment = next_slot(cron, tz_name, start - _TICK)
    while moment is not None and moment < end and len(found) <= limit:
        found.append(moment)
        moment = next_slot(cron, tz_name, moment)
    return found


def interval_slots(interval: int, unit: str, tz_name: str, start: datetime, end: datetime,
                   limit: int) -> list[datetime]:
    """Slots every `interval` `unit`s from start in [start, end), at most limit + 1 of them."""
    if unit not in INTERVAL_UNITS:
        raise ValueError(f"unit must be one of {', '.join(INTERVAL_UNITS)}, not {unit!r}")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be a whole number of at least 1, not {interval!r}")
    anchor = start.astimezone(UTC).replace(microsecond=0)
    if anchor < start:
        anchor += timedelta(seconds=1)
    if unit == "HOURS":
        step, found = timedelta(hours=interval), []
        while anchor + len(found) * step < end and len(found) <= limit:
            found.append(anchor + len(found) * step)
        return found
    # Calendar days: the start's wall-clock time each day, by the schedule's own DST rules.
    wall = anchor.astimezone(ZoneInfo(tz_name))
    daily = parse_quartz(f"{wall.second} {wall.minute} {wall.hour} * * ?")
    every = interval * (7 if unit == "WEEKS" else 1)
    found, moment, index = [], next_slot(daily, tz_name, anchor - _TICK), 0
    while moment is not None and moment < end and len(found) <= limit:
        if index % every == 0:
            found.append(moment)
        index += 1
        moment = next_slot(daily, tz_name, moment)
    return found


# --- which slots, in which order -----------------------------------------------------------


def select_slots(slots: list[datetime], existing: list[tuple[datetime, int, str]],
                 policy: ReprocessPolicy) -> list[datetime]:
    """The slots `policy` runs, given the job's existing runs as (slot, run id, outcome)."""
    policy = ReprocessPolicy(policy)
    if policy == ReprocessPolicy.ALL:
        return list(slots)
    latest: dict[datetime, tuple[int, str]] = {}
    for slot, run_id, outcome in existing:
        if slot not in latest or run_id > latest[slot][0]:
            latest[slot] = (run_id, outcome)
    if policy == ReprocessPolicy.MISSING:
        return [slot for slot in slots if slot not in latest]
    return [slot for slot in slots if slot in latest and latest[slot][1] == FAILED]


def in_order(slots: list[datetime], order: Order) -> list[datetime]:
    """The slots in the order their runs start."""
    return sorted(slots, reverse=Order(order) == Order.NEWEST_FIRST)


def next_slots(planned: list[datetime], claimed: set[datetime], free: int) -> list[datetime]:
    """The next `free` slots of `planned` (already in order) that have no run yet."""
    if free <= 0:
        return []
    return [slot for slot in planned if slot not in claimed][:free]


def free_places(limit: int, unfinished: int) -> int:
    """How many more runs a backfill may have going: its limit counts every unfinished run
    (queued in the job's queue or running), on top of the job's own max_concurrent_runs."""
    return max(0, limit - unfinished)


# --- the parameters of a slot's run --------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_TIME_REFERENCE = re.compile(
    r"\{\{\s*(?:job\.trigger\.time|job\.start_time|backfill)\.(iso_date|iso_datetime)\s*\}\}|\{\{\s*(start_date)\s*\}\}")


def date_form(default: str) -> str | None:
    """"date" or "datetime" if a parameter's default looks like one (an ISO date or date-time,
    or a reference to a time's iso_date / iso_datetime), else None."""
    if not isinstance(default, str):
        return None
    text = default.strip()
    if _DATE.fullmatch(text):
        return "date"
    if _DATETIME.fullmatch(text):
        return "datetime"
    match = _TIME_REFERENCE.fullmatch(text)
    if match:
        return "datetime" if match.group(1) == "iso_datetime" else "date"
    return None


def parameter_to_fill(definitions: list[dict], named: str | None, given: set[str]) -> tuple[str, str] | None:
    """(name, form) of the job parameter the backfill fills: the one `named` (its form "date"
    unless its default is a date-time), else the first whose default looks like a date and that
    the extra job parameters do not set; None if there is none. Raises KeyError for a `named`
    parameter the job does not have."""
    by_name = {d.get("name"): d for d in definitions}
    if named:
        if named not in by_name:
            raise KeyError(named)
        return named, date_form(by_name[named].get("default", "")) or "date"
    for definition in definitions:
        form = date_form(definition.get("default", ""))
        if form and definition.get("name") not in given:
            return definition["name"], form
    return None


def slot_text(slot: datetime, form: str, tz_name: str) -> str:
    wall = slot.astimezone(ZoneInfo(tz_name))
    return wall.strftime("%Y-%m-%d") if form == "date" else wall.strftime("%Y-%m-%dT%H:%M:%S")


def slot_parameters(slot: datetime, fill: tuple[str, str] | None, extra: dict[str, str],
                    tz_name: str) -> dict[str, str]:
    """The job parameters a slot's run overrides: the extra ones with their backfill and
    trigger-time references resolved for this slot, and the filled one."""
    ctx = ReferenceContext(trigger_time=slot, backfill_time=slot)
    values = {name: resolve(value, ctx) for name, value in (extra or {}).items()}
    if fill is not None:
        values[fill[0]] = slot_text(slot, fill[1], tz_name)
    return values


# --- progress --------------------------------------------------------------------------------


def slot_state(life_cycle_state: str | None, result_state: str | None, repair_asked: bool = False) -> SlotState:
    """Where a claimed slot stands from its run (life_cycle_state None: the run was deleted)."""
    if life_cycle_state is None:
        return SlotState.FAILED
    outcome = outcome_of(life_cycle_state, result_state)
    if outcome == SUCCEEDED:
        return SlotState.DONE
    if outcome == FAILED:
        return SlotState.QUEUED if repair_asked else SlotState.FAILED
    return SlotState.QUEUED if life_cycle_state == "QUEUED" else SlotState.RUNNING


@dataclass(frozen=True)
class Progress:
    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    queued: int = 0
    not_started: int = 0

    def as_dict(self) -> dict:
        return {"total": self.total, "done": self.done, "running": self.running, "failed": self.failed,
                "queued": self.queued, "not_started": self.not_started}

    def percent(self, state: str) -> float:
        return 100.0 * getattr(self, state) / self.total if self.total else 0.0


def progress_of(total: int, states: list[SlotState]) -> Progress:
    counts = {state: 0 for state in SlotState}
    for state in states:
        counts[SlotState(state)] += 1
    return Progress(total=total, done=counts[SlotState.DONE], running=counts[SlotState.RUNNING],
                    failed=counts[SlotState.FAILED], queued=counts[SlotState.QUEUED],
                    not_started=max(0, total - len(states)))
