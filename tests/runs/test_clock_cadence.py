"""An idle clock renews its lease every LEASE_RENEW_EVERY, sweeps IDLE_SWEEP_FACTOR times less
often than a busy one, skips its look at the database when nobody committed (SQLite's
data_version), and still acts on every due time within a step (runs/clock.py run_clock).

The loop runs on injected time: time.monotonic, timezone.now and time.sleep are one fake clock."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from runs import clock
from runs.clock import clock_state, database_version, sweep_every, take_lease
from runs.admission import create_run
from runs.engine.states import RunLifeCycleState as L
from runs.models import Run, RunEvent
from tests.runs.conftest import make_job, shell

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt_timezone.utc)
CAP = 1.0


class FakeTime:
    """One clock for monotonic(), now() and sleep(): sleeping moves it on."""

    def __init__(self):
        self.seconds = 1000.0

    def monotonic(self):
        return self.seconds

    def now(self):
        return T0 + timedelta(seconds=self.seconds - 1000.0)

    def sleep(self, seconds):
        assert seconds > 0
        self.seconds += seconds


def simulate(monkeypatch, settings, seconds, state=lambda t: ([], False), version=lambda t: None, found=lambda t: 0):
    """Run the leader's loop for `seconds` of fake time; what it did, with fake times from 0."""
    settings.LAKEFLOW_CLOCK_IDLE_SECONDS = CAP
    fake = FakeTime()
    start = fake.seconds
    log = {"lease": [], "sweep": [], "fast": [], "state": []}

    def t():
        return fake.seconds - start

    def steps(slow):
        log["sweep" if slow else "fast"].append(t())
        return found(t())

    def read_state():
        log["state"].append(t())
        return state(t())

    monkeypatch.setattr(clock.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(clock.time, "sleep", fake.sleep)
    monkeypatch.setattr(clock.timezone, "now", fake.now)
    monkeypatch.setattr(clock, "take_lease", lambda holder, now: log["lease"].append(t()) or True)
    monkeypatch.setattr(clock, "release_lease", lambda holder: None)
    monkeypatch.setattr(clock, "run_clock_steps", steps)
    monkeypatch.setattr(clock, "clock_state", read_state)
    monkeypatch.setattr(clock, "database_version", lambda: version(t()))
    clock.run_clock(lambda: t() >= seconds, holder="test")
    return log


def gaps(times):
    return [round(b - a, 6) for a, b in zip(times, times[1:])]


def test_it_sweeps_often_after_finding_work_or_while_busy_and_rarely_when_idle():
    assert sweep_every(found=3, busy=False) == clock.SLOW_EVERY
    assert sweep_every(found=0, busy=True) == clock.SLOW_EVERY
    assert sweep_every(found=0, busy=False) == clock.SLOW_EVERY * clock.IDLE_SWEEP_FACTOR


def test_an_idle_leader_renews_its_lease_every_few_seconds_and_sweeps_rarely(monkeypatch, settings):
    log = simulate(monkeypatch, settings, 60)

    assert set(gaps(log["lease"])) == {clock.LEASE_RENEW_EVERY}
    assert clock.LEASE_RENEW_EVERY * 2 <= clock.LEASE_SECONDS  # a renewal may fail once before the lease lapses
    assert log["sweep"][0] == 0 and set(gaps(log["sweep"])) == {clock.SLOW_EVERY * clock.IDLE_SWEEP_FACTOR}
    assert log["fast"] == []  # nothing was due
    assert max(gaps(log["state"])) <= CAP  # what other processes create is seen within the cap


def test_a_busy_leader_sweeps_every_slow_every(monkeypatch, settings):
    # idle until a run starts at 20 s; it ends at 40 s
    log = simulate(monkeypatch, settings, 60, state=lambda t: ([], 20 <= t < 40))

    busy_sweeps = [s for s in log["sweep"] if 20 <= s < 40]
    assert busy_sweeps[0] <= 20 + CAP  # the first sweep once the run is seen
    assert set(gaps(busy_sweeps)) == {clock.SLOW_EVERY}
    after = [s for s in log["sweep"] if s >= 40]
    assert gaps(after) and set(gaps(after)) == {clock.SLOW_EVERY * clock.IDLE_SWEEP_FACTOR}


@pytest.mark.parametrize("due_at", [0.05, 3.3, 17.71, 29.99])
def test_a_due_time_is_acted_on_within_a_step_whatever_the_cadence(monkeypatch, settings, due_at):
    due = T0 + timedelta(seconds=due_at)
    done = []

    def state(t):  # a retry waiting until due_at, known from the start; the fast steps promote it
        return ([] if done else [due]), False

    def found(t):
        if t >= due_at and not done:
            done.append(t)
            return 1
        return 0

    simulate(monkeypatch, settings, 40, state=state, found=found)

    assert due_at <= done[0] <= due_at + clock.STEP_SECONDS


def test_a_due_time_created_while_the_clock_sleeps_waits_at_most_the_cap(monkeypatch, settings):
    created, due_at, done = 12.5, 12.6, []  # a retry 0.1 s away, created by a worker at 12.5 s

    def state(t):
        return ([T0 + timedelta(seconds=due_at)] if t >= created and not done else []), False

    def found(t):
        if t >= due_at and not done:
            done.append(t)
            return 1
        return 0

    simulate(monkeypatch, settings, 30, state=state, found=found, version=lambda t: (1, 0 if t < created else 1))

    assert due_at <= done[0] <= created + CAP + clock.STEP_SECONDS


def test_it_reads_the_state_again_only_when_someone_committed(monkeypatch, settings):
    commits = [7.2, 7.9, 31.0]
    log = simulate(monkeypatch, settings, 40, version=lambda t: (1, sum(c <= t for c in commits)))

    sweeps = set(log["sweep"])
    reads = [t for t in log["state"] if t not in sweeps]  # after each sweep the clock reads what it wrote
    first_after = [min(t for t in log["state"] if t >= c) for c in commits]
    assert all(read in reads for read in first_after)
    assert all(c <= read <= c + CAP for c, read in zip(commits, first_after))
    assert len(reads) == len(set(first_after))  # no other reads: nobody else committed


def test_the_state_says_busy_while_a_run_is_in_flight_or_a_reaction_is_pending(alice, broker):
    take_lease("test", T0)
    assert clock_state() == ([], False)

    run, _ = create_run(make_job(alice, [shell("a")]))
    assert clock_state()[1] is True

    Run.objects.filter(id=run.id).update(life_cycle_state=L.TERMINATED)
    RunEvent.objects.update(reactions_pending=False)
    assert clock_state() == ([], False)

    RunEvent.objects.filter(run=run).update(reactions_pending=True)
    assert clock_state()[1] is True


def test_the_database_version_moves_with_another_connections_commit(transactional_db, tmp_path):
    import sqlite3

    from django.db import connection

    if connection.vendor != "sqlite":
        assert database_version() is None
        return
    before = database_version()
    assert database_version() == before  # nothing committed in between
    other = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        other.execute("UPDATE runs_clocklease SET holder = holder")
        other.commit()
    finally:
        other.close()
    assert database_version() != before
