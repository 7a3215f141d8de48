"""An idle clock sleeps until its next due time (runs/clock.py pause_seconds, next_due_times)."""

from datetime import datetime, timedelta, timezone as dt_timezone

from runs.clock import next_due_times, pause_seconds, take_lease
from runs.models import TriggerState
from tests.runs.conftest import make_job, shell

T0 = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=dt_timezone.utc)
STEP, CAP = 0.2, 1.0


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def test_it_sleeps_until_the_earliest_due_time():
    assert pause_seconds(T0, [at(0.7), at(0.45), at(3)], until_slow=1.5, step=STEP, cap=CAP) == 0.45


def test_it_sleeps_at_most_the_cap_when_nothing_is_due_soon():
    assert pause_seconds(T0, [], until_slow=1.5, step=STEP, cap=CAP) == CAP
    assert pause_seconds(T0, [at(60)], until_slow=1.5, step=STEP, cap=CAP) == CAP


def test_it_wakes_for_the_slow_pass_that_renews_the_lease():
    assert pause_seconds(T0, [at(0.9)], until_slow=0.3, step=STEP, cap=CAP) == 0.3


def test_it_never_sleeps_less_than_a_step_even_when_something_is_overdue():
    assert pause_seconds(T0, [at(-5), at(0.01)], until_slow=-1, step=STEP, cap=CAP) == STEP


def test_the_due_times_are_the_unpaused_triggers_next_checks(alice):
    schedule = {"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC"}
    make_job(alice, [shell("a")], name="live", schedule=schedule)
    make_job(alice, [shell("a")], name="paused", schedule={**schedule, "pause_status": "PAUSED"})
    assert next_due_times() == []  # no lease: a standby clock does not look

    take_lease("test", T0)
    live = TriggerState.objects.get(job__name="live", paused=False)
    assert next_due_times() == [live.next_check_at]
    TriggerState.objects.update(paused=True)
    assert next_due_times() == []


def test_an_idle_leader_runs_the_fast_steps_only_when_something_is_due(db, monkeypatch, settings):
    from django.utils import timezone

    from runs import clock

    settings.LAKEFLOW_CLOCK_IDLE_SECONDS = CAP
    soon = timezone.now() + timedelta(hours=1)
    dues = iter([[soon], [soon], [timezone.now() - timedelta(seconds=1)], [soon]])
    passes, pauses = [], []
    monkeypatch.setattr(clock, "take_lease", lambda holder, now: True)
    monkeypatch.setattr(clock, "release_lease", lambda holder: None)
    monkeypatch.setattr(clock, "run_clock_steps", lambda slow: passes.append(slow) or 0)
    monkeypatch.setattr(clock, "clock_state", lambda: (next(dues), False))
    monkeypatch.setattr(clock, "database_version", lambda: None)  # Postgres: a look every wake
    monkeypatch.setattr(clock.time, "sleep", pauses.append)  # no real sleeping: the pauses are recorded

    clock.run_clock(lambda: len(pauses) >= 3, holder="test")

    # the first sweep, then a wake with nothing due (no steps), then one with a retry overdue
    assert passes == [True, False]
    assert pauses[0] == pauses[1] == CAP  # the next slot is an hour away: the cap
