from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from jobs.spec.cron import parse_quartz
from runs.engine.schedule import decide_slot, latest_slot, next_slot, periodic_latest, periodic_next

UTC = timezone.utc
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
# 2025 transitions: Berlin springs forward 2025-03-30 01:00 UTC and falls back 2025-10-26
# 01:00 UTC; New York springs forward 2025-03-09 07:00 UTC and falls back 2025-11-02 06:00 UTC.


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def slots_between(expr, zone, start, end):
    cron, found, instant = parse_quartz(expr), [], start
    while True:
        instant = next_slot(cron, zone, instant)
        if instant is None or instant > end:
            return found
        found.append(instant)


def local(instant, zone):
    return instant.astimezone(ZoneInfo(zone))


# --- daylight saving time --------------------------------------------------------


@pytest.mark.parametrize("zone, expr, day_start, gap_end", [
    # 02:30 does not exist: it fires when the gap ends, 03:00 local
    (BERLIN, "0 30 2 * * ?", utc(2025, 3, 29, 22), utc(2025, 3, 30, 1)),
    (NEW_YORK, "0 30 2 * * ?", utc(2025, 3, 9, 5), utc(2025, 3, 9, 7)),
])
def test_a_daily_job_in_the_spring_forward_gap_fires_once_at_the_gap_end(zone, expr, day_start,
                                                                         gap_end):
    fired = slots_between(expr, zone, day_start, day_start + timedelta(days=1))
    assert fired == [gap_end]
    assert local(gap_end, zone).hour == 3 and local(gap_end, zone).minute == 0


@pytest.mark.parametrize("zone, expr, day_start, first_occurrence", [
    # the repeated hour: 02:00-03:00 in Berlin, 01:00-02:00 in New York
    (BERLIN, "0 30 2 * * ?", utc(2025, 10, 25, 22), utc(2025, 10, 26, 0, 30)),  # 02:30 CEST
    (NEW_YORK, "0 30 1 * * ?", utc(2025, 11, 2, 4), utc(2025, 11, 2, 5, 30)),  # 01:30 EDT
])
def test_a_daily_job_in_the_repeated_hour_fires_once_at_its_first_occurrence(
        zone, expr, day_start, first_occurrence):
    fired = slots_between(expr, zone, day_start, day_start + timedelta(days=1))
    assert fired == [first_occurrence]
    assert local(first_occurrence, zone).fold == 0


def test_every_15_minutes_across_spring_forward_in_berlin():
    fired = slots_between("0 0/15 * ? * *", BERLIN, utc(2025, 3, 29, 23), utc(2025, 3, 30, 3))
    assert fired == sorted(set(fired))
    steps = [b - a for a, b in zip(fired, fired[1:])]
    # 00:00-01:45 CET, then 02:00..03:00 local collapse into 03:00 CEST, then every 15 minutes
    assert set(steps) == {timedelta(minutes=15)}  # the collapse costs no gap in UTC
    assert len(fired) == 16  # 4 h of UTC time, 4 per hour; local 02:xx never exists
    assert [local(t, BERLIN).strftime("%H:%M") for t in fired[5:9]] == [
        "01:30", "01:45", "03:00", "03:15"]


def test_every_15_minutes_across_fall_back_in_berlin():
    fired = slots_between("0 0/15 * ? * *", BERLIN, utc(2025, 10, 25, 22), utc(2025, 10, 26, 3))
    assert fired == sorted(set(fired))
    walls = [local(t, BERLIN).strftime("%H:%M") for t in fired]
    assert len(walls) == len(set(walls))  # no wall time fires twice
    # 5 h of UTC time minus the second pass of 02:00-02:45 (4 slots)
    assert len(fired) == 5 * 4 - 4
    hour_gap = [b - a for a, b in zip(fired, fired[1:]) if b - a != timedelta(minutes=15)]
    assert hour_gap == [timedelta(hours=1, minutes=15)]  # 02:45 CEST -> 03:00 CET


def test_every_15_minutes_across_both_transitions_in_new_york():
    spring = slots_between("0 0/15 * ? * *", NEW_YORK, utc(2025, 3, 9, 4), utc(2025, 3, 9, 9))
    assert spring == sorted(set(spring)) and len(spring) == 5 * 4
    assert set(b - a for a, b in zip(spring, spring[1:])) == {timedelta(minutes=15)}
    fall = slots_between("0 0/15 * ? * *", NEW_YORK, utc(2025, 11, 2, 4), utc(2025, 11, 2, 9))
    assert fall == sorted(set(fall)) and len(fall) == 5 * 4 - 4


def test_a_whole_dst_year_of_hourly_slots_has_no_repeats():
    fired = slots_between("0 0 * ? * *", BERLIN, utc(2025, 1, 1), utc(2026, 1, 1))
    assert fired == sorted(set(fired))
    # 8760 UTC hours in 2025 (Jan 1 00:00 itself excluded, 2026 Jan 1 00:00 included); the
    # March wall time 02:00 becomes 03:00's instant, and the October repeat fires nothing
    walls = {local(t, BERLIN).replace(tzinfo=None) for t in fired}
    assert len(walls) == len(fired)
    assert len(fired) == 8760 - 1


def test_next_slot_from_inside_the_second_pass_waits_for_the_hour_after():
    cron = parse_quartz("0 0/15 * ? * *")
    inside = utc(2025, 11, 2, 6, 20)  # 01:20 EST, the second 01:20 in New York
    assert next_slot(cron, NEW_YORK, inside) == utc(2025, 11, 2, 7)  # 02:00 EST
    assert latest_slot(cron, NEW_YORK, inside) == utc(2025, 11, 2, 5, 45)  # 01:45 EDT


def test_next_slot_right_after_the_collapsed_gap_goes_on():
    cron = parse_quartz("0 0/15 * ? * *")
    assert next_slot(cron, BERLIN, utc(2025, 3, 30, 0, 59)) == utc(2025, 3, 30, 1)
    assert next_slot(cron, BERLIN, utc(2025, 3, 30, 1)) == utc(2025, 3, 30, 1, 15)


def test_the_gap_end_is_exact_for_a_half_hour_shift():
    # Lord Howe Island moves by 30 minutes: 2025-10-05 02:00 +10:30 (15:30 UTC) -> 02:30 +11
    fired = next_slot(parse_quartz("0 15 2 * * ?"), "Australia/Lord_Howe", utc(2025, 10, 4, 12))
    assert fired == utc(2025, 10, 4, 15, 30)
    assert local(fired, "Australia/Lord_Howe").strftime("%H:%M") == "02:30"


# --- plain slots ------------------------------------------------------------------


def test_every_two_seconds():
    fired = slots_between("0/2 * * * * ?", "UTC", utc(2025, 6, 1, 12), utc(2025, 6, 1, 12, 0, 10))
    assert fired == [utc(2025, 6, 1, 12, 0, s) for s in (2, 4, 6, 8, 10)]


def test_next_slot_is_strictly_after():
    cron = parse_quartz("0 0 6 * * ?")
    assert next_slot(cron, "UTC", utc(2025, 6, 1, 6)) == utc(2025, 6, 2, 6)
    assert next_slot(cron, "UTC", utc(2025, 6, 1, 5, 59, 59, 999999)) == utc(2025, 6, 1, 6)


def test_the_time_zone_applies():
    cron = parse_quartz("0 0 6 * * ?")
    assert next_slot(cron, BERLIN, utc(2025, 6, 1)) == utc(2025, 6, 1, 4)  # CEST
    assert next_slot(cron, BERLIN, utc(2025, 1, 1)) == utc(2025, 1, 1, 5)  # CET


def test_an_aware_non_utc_instant_is_accepted_and_the_answer_is_utc():
    after = datetime(2025, 6, 1, 8, 0, tzinfo=ZoneInfo(BERLIN))
    fired = next_slot(parse_quartz("0 0 9 * * ?"), BERLIN, after)
    assert fired == utc(2025, 6, 1, 7) and fired.tzinfo is UTC


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_slot(parse_quartz("0 0 6 * * ?"), "UTC", datetime(2025, 6, 1))


def test_last_weekday_and_days_before_last():
    lw = slots_between("0 0 12 LW * ?", "UTC", utc(2025, 5, 1), utc(2025, 9, 1))
    assert [t.day for t in lw] == [30, 30, 31, 29]  # May 31 Sat, Aug 31 Sun
    three_before = slots_between("0 0 12 L-3 * ?", "UTC", utc(2024, 1, 1), utc(2024, 4, 1))
    assert [(t.month, t.day) for t in three_before] == [(1, 28), (2, 26), (3, 28)]


def test_nearest_weekday_and_nth_weekday_in_a_zone():
    assert next_slot(parse_quartz("0 0 12 15W * ?"), BERLIN, utc(2025, 3, 1)) == utc(2025, 3, 14, 11)
    assert next_slot(parse_quartz("0 30 2 ? * 1#2"), BERLIN, utc(2025, 3, 1)) == utc(2025, 3, 9, 1, 30)


def test_a_year_list_runs_out():
    cron = parse_quartz("0 0 12 1 JAN ? 2027,2030")
    fired = slots_between("0 0 12 1 JAN ? 2027,2030", "UTC", utc(2025, 1, 1), utc(2099, 1, 1))
    assert fired == [utc(2027, 1, 1, 12), utc(2030, 1, 1, 12)]
    assert next_slot(cron, "UTC", utc(2030, 1, 1, 12)) is None
    assert latest_slot(cron, "UTC", utc(2029, 1, 1)) == utc(2027, 1, 1, 12)
    assert latest_slot(cron, "UTC", utc(2026, 1, 1)) is None


# --- catching up ------------------------------------------------------------------


def test_latest_slot_after_downtime_is_only_the_latest():
    cron = parse_quartz("0 0/15 * ? * *")
    down_since, back_at = utc(2025, 6, 1, 8, 2), utc(2025, 6, 3, 17, 44, 59)
    assert latest_slot(cron, BERLIN, back_at) == utc(2025, 6, 3, 17, 30)
    assert latest_slot(cron, BERLIN, back_at) > next_slot(cron, BERLIN, down_since)


def test_latest_slot_includes_the_instant_itself():
    cron = parse_quartz("0 0 6 * * ?")
    assert latest_slot(cron, "UTC", utc(2025, 6, 1, 6)) == utc(2025, 6, 1, 6)
    assert latest_slot(cron, "UTC", utc(2025, 6, 1, 5, 59, 59)) == utc(2025, 5, 31, 6)


def test_latest_slot_in_the_gap_and_after_it():
    cron = parse_quartz("0 30 2 * * ?")
    assert latest_slot(cron, BERLIN, utc(2025, 3, 30, 1)) == utc(2025, 3, 30, 1)
    assert latest_slot(cron, BERLIN, utc(2025, 3, 30, 0, 59)) == utc(2025, 3, 29, 1, 30)


# --- periodic triggers -------------------------------------------------------------

ANCHOR = utc(2025, 6, 1, 10, 17, 3)


@pytest.mark.parametrize("interval, unit, step", [
    (5, "MINUTES", timedelta(minutes=5)),
    (2, "HOURS", timedelta(hours=2)),
    (1, "DAYS", timedelta(days=1)),
    (3, "WEEKS", timedelta(weeks=3)),
])
def test_periodic_slots_are_anchor_plus_multiples(interval, unit, step):
    assert periodic_next(interval, unit, ANCHOR, ANCHOR) == ANCHOR + step
    assert periodic_next(interval, unit, ANCHOR, ANCHOR + step) == ANCHOR + 2 * step
    assert periodic_next(interval, unit, ANCHOR, ANCHOR + 7 * step - timedelta(microseconds=1)) \
        == ANCHOR + 7 * step
    assert periodic_latest(interval, unit, ANCHOR, ANCHOR + 7 * step) == ANCHOR + 7 * step
    assert periodic_latest(interval, unit, ANCHOR, ANCHOR + 7 * step + step / 2) == ANCHOR + 7 * step


def test_enabling_a_periodic_trigger_does_not_fire_it():
    assert periodic_latest(1, "HOURS", ANCHOR, ANCHOR + timedelta(minutes=59)) is None
    assert periodic_next(1, "HOURS", ANCHOR, ANCHOR - timedelta(days=3)) == ANCHOR + timedelta(hours=1)


def test_periodic_days_are_24_hours_even_across_dst():
    anchor = datetime(2025, 3, 29, 9, tzinfo=ZoneInfo(BERLIN))  # 08:00 UTC
    assert periodic_next(1, "DAYS", anchor, anchor) == utc(2025, 3, 30, 8)


@pytest.mark.parametrize("interval, unit, message", [
    (0, "DAYS", "interval"), (True, "DAYS", "interval"), (1, "YEARS", "unit"),
])
def test_periodic_refuses_bad_settings(interval, unit, message):
    with pytest.raises(ValueError, match=message):
        periodic_next(interval, unit, ANCHOR, ANCHOR)


def test_a_catch_up_slot_older_than_the_latest_fires_first_and_keeps_the_trigger_due():
    t = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    later = t + timedelta(seconds=10)
    decision = decide_slot(latest=later, following=later + timedelta(seconds=2), last_fired=t - timedelta(seconds=2),
                           enabled_at=t - timedelta(hours=1), catch_up=t)
    assert (decision.fire, decision.next_check, decision.missed) == (t, later, 0)
    assert decision.reason.endswith("fired late, to catch up")
    # The catch-up slot is the latest one: an ordinary firing.
    same = decide_slot(latest=later, following=later + timedelta(seconds=2), last_fired=t, enabled_at=t, catch_up=later)
    assert (same.fire, same.next_check, same.reason) == (later, later + timedelta(seconds=2),
                                                         "slot 2026-03-01 12:00:10 UTC came")
