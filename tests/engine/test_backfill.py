"""The pure arithmetic of backfills: slots of schedules and intervals (DST days included), the
reprocess policies, the order, the parameters a slot's run gets, and progress."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from jobs.spec.cron import parse_quartz
from runs.engine.backfill import (
    FAILED,
    SUCCEEDED,
    UNFINISHED,
    Order,
    ReprocessPolicy,
    SlotState,
    date_form,
    free_places,
    in_order,
    interval_slots,
    next_slots,
    outcome_of,
    parameter_to_fill,
    progress_of,
    schedule_slots,
    select_slots,
    slot_parameters,
    slot_state,
)

UTC = timezone.utc
BERLIN = "Europe/Berlin"
# 2024: Berlin springs forward on 2024-03-31 at 01:00 UTC (02:00 -> 03:00 local) and falls back
# on 2024-10-27 at 01:00 UTC (03:00 -> 02:00 local).


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def wall(instant, zone=BERLIN):
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


# --- schedule slots ------------------------------------------------------------------------


def test_a_daily_schedule_has_one_slot_per_day_in_the_range_and_not_the_one_at_its_end():
    slots = schedule_slots(parse_quartz("0 0 6 * * ?"), "UTC", utc(2024, 1, 1), utc(2024, 1, 4, 6), 1000)
    assert slots == [utc(2024, 1, 1, 6), utc(2024, 1, 2, 6), utc(2024, 1, 3, 6)]


def test_a_slot_at_the_start_of_the_range_is_in_it():
    slots = schedule_slots(parse_quartz("0 0 6 * * ?"), "UTC", utc(2024, 1, 1, 6), utc(2024, 1, 2), 1000)
    assert slots == [utc(2024, 1, 1, 6)]


def test_a_daily_0230_schedule_on_the_spring_forward_day_runs_at_the_gap_end_as_the_schedule_fires():
    slots = schedule_slots(parse_quartz("0 30 2 * * ?"), BERLIN, utc(2024, 3, 30), utc(2024, 4, 2), 1000)
    assert [wall(s) for s in slots] == ["2024-03-30 02:30 CET", "2024-03-31 03:00 CEST", "2024-04-01 02:30 CEST"]


def test_an_hourly_schedule_has_24_slots_on_the_fall_back_day_the_repeated_hour_once():
    day = (utc(2024, 10, 26, 22), utc(2024, 10, 27, 23))  # the local day 2024-10-27, 25 hours long
    slots = schedule_slots(parse_quartz("0 0 * * * ?"), BERLIN, *day, 1000)
    assert len(slots) == 24
    assert sorted(set(slots)) == slots
    assert [wall(s) for s in slots[2:4]] == ["2024-10-27 02:00 CEST", "2024-10-27 03:00 CET"]


def test_slots_stop_one_past_the_limit_so_the_caller_can_say_too_many():
    slots = schedule_slots(parse_quartz("0 * * * * ?"), "UTC", utc(2024, 1, 1), utc(2024, 1, 2), 10)
    assert len(slots) == 11


# --- interval slots ------------------------------------------------------------------------


def test_a_daily_interval_runs_at_the_wall_clock_time_of_the_start():
    slots = interval_slots(1, "DAYS", "UTC", utc(2024, 1, 1, 5, 30), utc(2024, 1, 4), 1000)
    assert slots == [utc(2024, 1, 1, 5, 30), utc(2024, 1, 2, 5, 30), utc(2024, 1, 3, 5, 30)]


def test_a_daily_interval_at_0230_in_berlin_on_the_spring_forward_day_runs_at_the_gap_end():
    start = datetime(2024, 3, 30, 2, 30, tzinfo=ZoneInfo(BERLIN))
    slots = interval_slots(1, "DAYS", BERLIN, start, utc(2024, 4, 2), 1000)
    assert [wall(s) for s in slots] == ["2024-03-30 02:30 CET", "2024-03-31 03:00 CEST", "2024-04-01 02:30 CEST"]


def test_a_daily_interval_at_0230_in_berlin_on_the_fall_back_day_runs_once_at_the_first_0230():
    start = datetime(2024, 10, 26, 2, 30, tzinfo=ZoneInfo(BERLIN))
    slots = interval_slots(1, "DAYS", BERLIN, start, utc(2024, 10, 29), 1000)
    assert [wall(s) for s in slots] == ["2024-10-26 02:30 CEST", "2024-10-27 02:30 CEST", "2024-10-28 02:30 CET"]


def test_a_daily_interval_keeps_local_midnight_so_the_spring_forward_day_is_23_hours_long():
    start = datetime(2024, 3, 30, tzinfo=ZoneInfo(BERLIN))
    slots = interval_slots(1, "DAYS", BERLIN, start, utc(2024, 4, 1, 12), 1000)
    assert [wall(s) for s in slots] == ["2024-03-30 00:00 CET", "2024-03-31 00:00 CET", "2024-04-01 00:00 CEST"]
    assert [b - a for a, b in zip(slots, slots[1:])] == [timedelta(hours=24), timedelta(hours=23)]


def test_an_hourly_interval_has_25_slots_on_the_fall_back_day_one_per_hour_of_real_time():
    slots = interval_slots(1, "HOURS", BERLIN, utc(2024, 10, 26, 22), utc(2024, 10, 27, 23), 1000)
    assert len(slots) == 25
    assert all(b - a == timedelta(hours=1) for a, b in zip(slots, slots[1:]))
    assert [wall(s) for s in slots[2:5]] == ["2024-10-27 02:00 CEST", "2024-10-27 02:00 CET", "2024-10-27 03:00 CET"]


def test_an_hourly_interval_has_23_slots_on_the_spring_forward_day():
    assert len(interval_slots(1, "HOURS", BERLIN, utc(2024, 3, 30, 23), utc(2024, 3, 31, 22), 1000)) == 23


def test_every_two_weeks_from_a_monday():
    slots = interval_slots(2, "WEEKS", "UTC", utc(2024, 1, 1), utc(2024, 2, 15), 1000)
    assert slots == [utc(2024, 1, 1), utc(2024, 1, 15), utc(2024, 1, 29), utc(2024, 2, 12)]


def test_an_interval_starts_on_the_whole_second_at_or_after_the_start():
    slots = interval_slots(6, "HOURS", "UTC", utc(2024, 1, 1, 0, 0, 0, 500_000), utc(2024, 1, 1, 13), 1000)
    assert slots == [utc(2024, 1, 1, 0, 0, 1), utc(2024, 1, 1, 6, 0, 1), utc(2024, 1, 1, 12, 0, 1)]


@pytest.mark.parametrize("interval, unit", [(0, "DAYS"), (1, "MINUTES"), (True, "DAYS"), ("1", "HOURS")])
def test_a_bad_interval_is_refused(interval, unit):
    with pytest.raises(ValueError):
        interval_slots(interval, unit, "UTC", utc(2024, 1, 1), utc(2024, 1, 2), 10)


# --- policies and order ----------------------------------------------------------------------

SLOTS = [utc(2024, 1, day) for day in (1, 2, 3, 4)]


def test_all_runs_every_slot():
    assert select_slots(SLOTS, [(SLOTS[0], 1, SUCCEEDED)], ReprocessPolicy.ALL) == SLOTS


def test_missing_runs_the_slots_without_any_run_even_an_unfinished_or_failed_one_counts():
    existing = [(SLOTS[0], 1, SUCCEEDED), (SLOTS[1], 2, FAILED), (SLOTS[2], 3, UNFINISHED)]
    assert select_slots(SLOTS, existing, ReprocessPolicy.MISSING) == [SLOTS[3]]


def test_failed_runs_the_slots_whose_latest_run_failed():
    existing = [(SLOTS[0], 1, FAILED), (SLOTS[0], 5, SUCCEEDED),  # failed, then a later run succeeded
                (SLOTS[1], 2, SUCCEEDED), (SLOTS[1], 6, FAILED),  # succeeded, then a later run failed
                (SLOTS[2], 3, UNFINISHED)]
    assert select_slots(SLOTS, existing, ReprocessPolicy.FAILED) == [SLOTS[1]]


def test_newest_first_reverses_the_order_and_oldest_first_keeps_it():
    shuffled = [SLOTS[2], SLOTS[0], SLOTS[3], SLOTS[1]]
    assert in_order(shuffled, Order.OLDEST_FIRST) == SLOTS
    assert in_order(shuffled, Order.NEWEST_FIRST) == SLOTS[::-1]


def test_the_next_slots_are_the_first_unclaimed_ones_up_to_the_free_places():
    assert next_slots(SLOTS, {SLOTS[0], SLOTS[2]}, 5) == [SLOTS[1], SLOTS[3]]
    assert next_slots(SLOTS, set(), 2) == SLOTS[:2]
    assert next_slots(SLOTS, set(), 0) == []


def test_free_places_count_every_unfinished_run_and_never_go_below_zero():
    assert free_places(3, 1) == 2
    assert free_places(2, 5) == 0


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("default, form", [
    ("2024-01-31", "date"), ("2024-01-31T00:00:00", "datetime"), ("2024-01-31 10:00", "datetime"),
    ("2024-01-31T10:00:00Z", "datetime"), ("{{job.trigger.time.iso_date}}", "date"),
    ("{{ job.start_time.iso_datetime }}", "datetime"), ("{{backfill.iso_date}}", "date"), ("{{start_date}}", "date"),
    ("today", None), ("{{job.id}}", None), ("2024-01", None), ("", None),
])
def test_what_looks_like_a_date(default, form):
    assert date_form(default) == form


DEFINITIONS = [{"name": "who", "default": "ada"}, {"name": "day", "default": "2024-01-01"},
               {"name": "at", "default": "{{job.trigger.time.iso_datetime}}"}]


def test_the_first_date_like_parameter_is_filled_unless_the_extra_parameters_set_it():
    assert parameter_to_fill(DEFINITIONS, None, set()) == ("day", "date")
    assert parameter_to_fill(DEFINITIONS, None, {"day"}) == ("at", "datetime")
    assert parameter_to_fill(DEFINITIONS[:1], None, set()) is None


def test_a_named_parameter_is_filled_even_if_its_default_is_no_date_and_an_unknown_one_is_refused():
    assert parameter_to_fill(DEFINITIONS, "who", set()) == ("who", "date")
    assert parameter_to_fill(DEFINITIONS, "at", set()) == ("at", "datetime")
    with pytest.raises(KeyError):
        parameter_to_fill(DEFINITIONS, "nope", set())


def test_the_filled_value_is_the_slots_wall_time_in_the_backfills_zone():
    midnight_in_berlin = utc(2024, 3, 30, 23)  # 2024-03-31 00:00 CET
    assert slot_parameters(midnight_in_berlin, ("day", "date"), {}, BERLIN) == {"day": "2024-03-31"}
    assert slot_parameters(midnight_in_berlin, ("at", "datetime"), {}, BERLIN) == {"at": "2024-03-31T00:00:00"}
    assert slot_parameters(midnight_in_berlin, ("day", "date"), {}, "UTC") == {"day": "2024-03-30"}


def test_extra_parameters_get_their_backfill_and_trigger_time_references_resolved_per_slot():
    values = slot_parameters(utc(2024, 2, 29, 6), None, {
        "d": "{{backfill.iso_date}}", "t": "{{job.trigger.time.iso_datetime}}", "y": "{{backfill.year}}",
        "other": "{{job.id}} stays"}, "UTC")
    assert values == {"d": "2024-02-29", "t": "2024-02-29T06:00:00", "y": "2024", "other": "{{job.id}} stays"}


# --- progress --------------------------------------------------------------------------------


@pytest.mark.parametrize("life_cycle_state, result_state, repair_asked, state", [
    ("QUEUED", None, False, SlotState.QUEUED),
    ("RUNNING", None, False, SlotState.RUNNING),
    ("TERMINATING", None, False, SlotState.RUNNING),
    ("TERMINATED", "SUCCESS", False, SlotState.DONE),
    ("TERMINATED", "SUCCESS_WITH_FAILURES", False, SlotState.DONE),
    ("TERMINATED", "FAILED", False, SlotState.FAILED),
    ("TERMINATED", "CANCELED", False, SlotState.FAILED),
    ("SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", False, SlotState.FAILED),
    ("TERMINATED", "FAILED", True, SlotState.QUEUED),  # a repair waits for a free place
    (None, None, False, SlotState.FAILED),  # the run was deleted
])
def test_a_slots_state_from_its_run(life_cycle_state, result_state, repair_asked, state):
    assert slot_state(life_cycle_state, result_state, repair_asked) == state


def test_a_runs_outcome_for_the_policies():
    assert [outcome_of(*states) for states in [("RUNNING", None), ("QUEUED", None), ("TERMINATED", "SUCCESS"),
                                               ("TERMINATED", "TIMEDOUT"), ("INTERNAL_ERROR", None)]] == [
        UNFINISHED, UNFINISHED, SUCCEEDED, FAILED, FAILED]


def test_progress_counts_each_state_and_the_slots_not_started():
    progress = progress_of(10, [SlotState.DONE, SlotState.DONE, SlotState.FAILED, SlotState.RUNNING, SlotState.QUEUED])
    assert progress.as_dict() == {"total": 10, "done": 2, "running": 1, "failed": 1, "queued": 1, "not_started": 5}
    assert progress.percent("done") == 20.0
