"""Job-completion triggers driven by real run events (the reaction runs on commit), several
triggers per job on the clock, and the sql_condition gate with its evaluator replaced."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.job_completion import record_job_completion
from runs.models import Run, RunEvent, TriggerDecision, TriggerState
from runs.sql_conditions import ConditionResult
from runs.firings import answer_firing, evaluate_firing
from runs.repair import repair_run
from runs.triggers import run_due_triggers, sync_trigger_state
from tests.runs.conftest import make_job, shell
from tests.runs.test_triggers import finish_run_with

T0 = datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=dt_timezone.utc)
GATE = {"warehouse_id": "default", "query": "SELECT 1 WHERE false"}


def upstream(alice, name):
    return make_job(alice, [shell("a")], name=name)


def watching(alice, *jobs, if_status=None, **extra):
    completion = {"jobs": [{"job_id": job.id, "workspace_id": "0"} for job in jobs],
                  **({"if_status": if_status} if if_status else {})}
    return make_job(alice, [shell("c")], name="downstream", trigger={"job_completion": completion, **extra})


def complete(job, result=R.SUCCESS):
    """A run of `job` that ends with `result`; its run.finished reactions run as it commits."""
    run, _ = create_run(job)
    finish_run_with(run, result)
    return Run.objects.get(id=run.id)


def runs_of(job):
    return list(Run.objects.filter(job=job).order_by("id"))


def state_of(job, position=0):
    return TriggerState.objects.get(job=job, position=position)


def finished_event(run):
    return RunEvent.objects.select_related("run").get(run=run, type="run.finished")


@pytest.fixture
def pair(alice, broker):
    return upstream(alice, "A"), upstream(alice, "B")


def test_it_fires_once_when_both_upstreams_succeed_with_the_completed_jobs(alice, pair):
    a, b = pair
    c = watching(alice, a, b)
    ran_a = complete(a)
    assert runs_of(c) == []
    assert TriggerDecision.objects.get(job=c).reason == f"run {ran_a.id} of job {a.id} completed (SUCCESS); " \
                                                        f"waiting for job {b.id}"
    ran_b = complete(b)

    (run,) = runs_of(c)
    assert run.trigger == Run.Trigger.JOB_COMPLETION
    completed = run.trigger_details["job_completion"]["completed_jobs"]
    assert [(j["job_id"], j["run_id"], j["termination_code"], j["workspace_id"]) for j in completed] == [
        (str(a.id), str(ran_a.id), "SUCCESS", "0"), (str(b.id), str(ran_b.id), "SUCCESS", "0")]
    assert completed[1]["completion_time"] == ran_b.ended_at.astimezone(dt_timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    assert run.trigger_slot == ran_b.ended_at  # the combination's key: its last completion
    assert state_of(c).completions["pending"] == {} and state_of(c).last_run_id == run.id

    complete(a)  # a new combination needs both again
    assert len(runs_of(c)) == 1
    complete(b)
    assert len(runs_of(c)) == 2


def test_a_failure_does_not_fire_a_success_trigger_and_says_so(alice, pair):
    a, b = pair
    c = watching(alice, a, b)
    failed = complete(a, R.FAILED)
    complete(b)
    assert runs_of(c) == []
    reasons = list(TriggerDecision.objects.filter(job=c).order_by("id").values_list("reason", flat=True))
    assert reasons[0] == (f"run {failed.id} of job {a.id} ended FAILED, which does not match if_status SUCCESS: "
                          "not counted")


def test_done_fires_on_any_end_and_failed_on_a_failure(alice, pair):
    a, b = pair
    done = watching(alice, a, b, if_status="DONE")
    failed = watching(alice, a, if_status="FAILED")
    complete(a, R.CANCELED)
    complete(b, R.FAILED)
    assert [r.trigger for r in runs_of(done)] == [Run.Trigger.JOB_COMPLETION]
    assert len(runs_of(failed)) == 1
    complete(a)
    assert len(runs_of(failed)) == 1


def test_a_redelivered_reaction_fires_nothing_more(alice, pair):
    a, b = pair
    c = watching(alice, a, b)
    complete(a)
    ran_b = complete(b)
    assert len(runs_of(c)) == 1
    record_job_completion(finished_event(ran_b))  # at least once: it may come again
    record_job_completion(finished_event(ran_b))
    assert len(runs_of(c)) == 1
    assert state_of(c).completions["pending"] == {}


def test_a_firing_whose_reset_was_lost_still_makes_one_run_and_then_resets(alice, pair):
    a, b = pair
    c = watching(alice, a, b)
    complete(a)
    ran_b = complete(b)
    (run,) = runs_of(c)
    # As if the run had committed and the state's reset had not: the combination is still there.
    state = state_of(c)
    TriggerState.objects.filter(id=state.id).update(completions={**state.completions,
                                                                 "pending": state.completions["latest"]})

    record_job_completion(finished_event(ran_b))  # the sweep runs the reaction again

    assert runs_of(c) == [run]
    assert state_of(c).completions["pending"] == {}
    complete(a)
    complete(b)
    assert len(runs_of(c)) == 2


def test_a_paused_trigger_records_no_completion_and_resuming_waits_for_new_ones(alice, pair):
    a, b = pair
    c = watching(alice, a, b, pause_status="PAUSED")
    complete(a)
    assert state_of(c).completions == {}
    c.save_version({**c.settings, "trigger": {**c.settings["trigger"], "pause_status": "UNPAUSED"}}, alice)
    complete(b)
    assert runs_of(c) == []
    complete(a)
    assert len(runs_of(c)) == 1


def test_a_trigger_of_a_triggers_list_fires_beside_the_others(alice, pair):
    a, b = pair
    c = make_job(alice, [shell("c")], triggers=[
        {"periodic": {"interval": 1, "unit": "HOURS"}},
        {"job_completion": {"jobs": [{"job_id": a.id}]}},
        {"job_completion": {"jobs": [{"job_id": b.id}]}, "pause_status": "PAUSED"}])
    complete(a)
    complete(b)
    (run,) = runs_of(c)
    assert [j["job_id"] for j in run.trigger_details["job_completion"]["completed_jobs"]] == [str(a.id)]
    assert TriggerDecision.objects.get(job=c, run=run).position == 1


# --- several triggers on the clock -----------------------------------------------------------


def test_a_schedule_and_a_file_arrival_of_one_job_each_fire(alice, broker, tmp_path):
    watched = tmp_path / "landing"
    watched.mkdir()
    job = make_job(alice, [shell("a")], triggers=[
        {"schedule": {"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC"}},
        {"file_arrival": {"url": str(watched)}}])
    TriggerState.objects.filter(job=job).delete()
    assert [s.kind for s in sync_trigger_state(job, T0)] == ["schedule", "file_arrival"]

    assert run_due_triggers(T0) == 0  # the file trigger's first look notes what is there
    (watched / "new.csv").write_text("x")
    assert run_due_triggers(T0 + timedelta(seconds=2)) == 2
    assert sorted(r.trigger for r in runs_of(job)) == ["FILE_ARRIVAL", "PERIODIC"]
    assert sorted(TriggerDecision.objects.filter(job=job, kind="fired").values_list("position", flat=True)) == [0, 1]


def test_two_triggers_firing_for_the_same_instant_make_one_run(alice, broker):
    every_two = {"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC"}
    job = make_job(alice, [shell("a")], triggers=[{"schedule": every_two}, {"schedule": {**every_two,
                                                                                        "timezone_id": "Asia/Tokyo"}}])
    TriggerState.objects.filter(job=job).delete()
    sync_trigger_state(job, T0)
    run_due_triggers(T0 + timedelta(seconds=2))
    assert len(runs_of(job)) == 1


def test_removing_an_entry_removes_its_state_and_keeps_the_others(alice, broker):
    every_two = {"quartz_cron_expression": "0/2 * * * * ?", "timezone_id": "UTC"}
    job = make_job(alice, [shell("a")], triggers=[{"schedule": every_two}, {"periodic": {"interval": 1,
                                                                                       "unit": "DAYS"}}])
    first = state_of(job, 0)
    job.save_version({**job.settings, "triggers": [{"schedule": every_two, "pause_status": "UNPAUSED"}]}, alice)
    assert list(TriggerState.objects.filter(job=job)) == [first]


# --- the sql_condition gate ------------------------------------------------------------------


@pytest.fixture
def condition(monkeypatch):
    """The evaluator's twin (answers what the test sets, records what it was asked), and the
    broker's for evaluations: the firings handed to a worker wait until the test works them."""

    class Evaluator:
        def __init__(self):
            self.answer = ConditionResult(True, "1 row", state={"latest_condition_evaluation_satisfied": True},
                                          details={"condition_evaluation_satisfied": True})
            self.asked, self.handed = [], []

        def __call__(self, config, previous_state, *, job, now):
            self.asked.append((config, previous_state, now))
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

        def work(self, now):
            """The workers' part: evaluate every firing handed out so far, at `now`."""
            handed, self.handed = self.handed, []
            return [evaluate_firing(state_id, claim, now) for state_id, claim in handed]

    evaluator = Evaluator()
    monkeypatch.setattr("runs.firings.evaluate_sql_condition", evaluator)
    monkeypatch.setattr("runs.firings.send_evaluation", lambda state_id, claim: evaluator.handed.append(
        (state_id, claim)))
    return evaluator


def gated_periodic(alice, name="gated", unit="MINUTES"):
    job = make_job(alice, [shell("a")], name=name, trigger={"periodic": {"interval": 1, "unit": unit},
                                                            "sql_condition": GATE})
    TriggerState.objects.filter(job=job).delete()
    sync_trigger_state(job, T0)
    return job


def test_the_clock_hands_a_gated_firing_to_a_worker_and_does_not_wait_for_its_query(alice, broker, condition):
    gated = gated_periodic(alice)
    plain = make_job(alice, [shell("a")], name="plain", trigger={"periodic": {"interval": 1, "unit": "MINUTES"}})
    TriggerState.objects.filter(job=plain).delete()
    sync_trigger_state(plain, T0)

    run_due_triggers(T0 + timedelta(seconds=60))

    assert condition.asked == [] and len(condition.handed) == 1  # the query is the worker's, not the step's
    assert len(runs_of(plain)) == 1 and runs_of(gated) == []
    assert state_of(gated).pending_fire["claim"] == condition.handed[0][1]
    (run,) = condition.work(T0 + timedelta(seconds=61))
    assert runs_of(gated) == [run] and run.trigger_time == T0 + timedelta(seconds=60)
    assert state_of(gated).pending_fire is None


def test_an_unmet_condition_is_a_not_triggered_decision_and_no_run(alice, broker, condition):
    condition.answer = ConditionResult(False, "the query returned no rows", state={"x": 1})
    job = gated_periodic(alice)
    run_due_triggers(T0 + timedelta(seconds=60))
    assert condition.work(T0 + timedelta(seconds=61)) == [None]
    assert runs_of(job) == []
    decision = TriggerDecision.objects.get(job=job)
    assert decision.kind == "not_triggered" and decision.reason.endswith(
        "its sql_condition was not met: the query returned no rows")
    assert state_of(job).condition_state == {"x": 1} and condition.asked[0][0] == GATE


def test_a_failing_condition_is_a_visible_error_and_is_evaluated_again_later(alice, broker, condition):
    condition.answer = ConditionResult(False, "", error="warehouse 'default' is stopped")
    job = make_job(alice, [shell("a")], trigger={"periodic": {"interval": 1, "unit": "DAYS"},
                                                 "sql_condition": GATE})
    TriggerState.objects.filter(job=job).delete()
    sync_trigger_state(job, T0)
    fire_at = T0 + timedelta(days=1)
    run_due_triggers(fire_at)
    condition.work(fire_at)
    state = state_of(job)
    assert "warehouse 'default' is stopped" in state.last_error and state.pending_fire is not None
    assert state.next_check_at == fire_at + timedelta(seconds=10)  # not tomorrow: the firing waits
    assert TriggerDecision.objects.get(job=job).kind == "failed"
    run_due_triggers(fire_at + timedelta(seconds=5))
    assert condition.handed == []  # not yet

    condition.answer = ConditionResult(True, "1 row", details={"condition_evaluation_satisfied": True})
    run_due_triggers(fire_at + timedelta(seconds=10))
    condition.work(fire_at + timedelta(seconds=10))
    (run,) = runs_of(job)
    assert run.trigger_time == fire_at and run.trigger == "PERIODIC"
    assert run.trigger_details == {"sql_condition": {"condition_evaluation_satisfied": True}}
    state = state_of(job)
    assert state.pending_fire is None and state.last_error == ""
    run_due_triggers(fire_at + timedelta(minutes=5))
    assert condition.handed == [] and len(runs_of(job)) == 1
    assert state_of(job).next_check_at == fire_at + timedelta(days=1)


def test_a_raising_evaluator_is_a_failing_condition_not_a_run(alice, broker, condition):
    condition.answer = RuntimeError("boom")
    job = gated_periodic(alice)
    run_due_triggers(T0 + timedelta(seconds=60))
    condition.work(T0 + timedelta(seconds=60))
    assert runs_of(job) == [] and "RuntimeError: boom" in state_of(job).last_error


def test_an_evaluation_delivered_twice_starts_one_run(alice, broker, condition):
    job = gated_periodic(alice)
    run_due_triggers(T0 + timedelta(seconds=60))
    condition.handed *= 2  # the broker delivers the message again

    first, second = condition.work(T0 + timedelta(seconds=61))

    assert runs_of(job) == [first] and second is None
    assert len(condition.asked) == 1  # the second found the claim gone before asking the warehouse


def test_a_firing_whose_worker_never_answers_is_handed_out_again_and_a_late_answer_counts_for_nothing(
        alice, broker, condition):
    job = gated_periodic(alice, unit="DAYS")
    fire_at = T0 + timedelta(days=1)
    run_due_triggers(fire_at)
    lost = condition.handed.pop()
    state = state_of(job)
    late = state.pending_fire

    run_due_triggers(fire_at + timedelta(minutes=3))  # past its lease: the clock hands it out again
    assert [claim for _, claim in condition.handed] != [lost[1]] and len(condition.handed) == 1
    with transaction.atomic():  # the first worker answers only now, for a claim that is gone
        assert answer_firing(state, late, condition.answer, fire_at + timedelta(minutes=3)) is None
    assert runs_of(job) == []

    (run,) = condition.work(fire_at + timedelta(minutes=3))
    assert runs_of(job) == [run] and run.trigger_time == fire_at


def test_a_firing_while_an_earlier_one_is_evaluated_does_not_fire_and_says_so(alice, broker, condition, settings):
    settings.LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS = 120  # the first evaluation is still within its lease
    job = gated_periodic(alice)
    run_due_triggers(T0 + timedelta(seconds=60))
    run_due_triggers(T0 + timedelta(seconds=120))

    assert len(condition.handed) == 1
    skipped = TriggerDecision.objects.get(job=job, kind="skipped")
    assert "its sql_condition is still being evaluated for an earlier firing" in skipped.reason
    (run,) = condition.work(T0 + timedelta(seconds=130))
    assert run.trigger_time == T0 + timedelta(seconds=60)


def test_pausing_a_trigger_voids_the_evaluation_it_handed_out(alice, broker, condition):
    job = gated_periodic(alice)
    run_due_triggers(T0 + timedelta(seconds=60))
    trigger = job.settings["trigger"]
    job.save_version({**job.settings, "trigger": {**trigger, "pause_status": "PAUSED"}}, alice)
    job.save_version({**job.settings, "trigger": {**trigger, "pause_status": "UNPAUSED"}}, alice)

    assert condition.work(T0 + timedelta(seconds=61)) == [None]
    assert runs_of(job) == [] and condition.asked == []


def test_a_gated_job_completion_is_handed_to_a_worker_and_fires_with_both_details(alice, pair, condition):
    a, b = pair
    c = watching(alice, a, b, sql_condition=GATE)
    complete(a)
    complete(b)
    assert runs_of(c) == [] and state_of(c).pending_fire is not None and condition.asked == []
    assert len(condition.handed) == 1  # handed out as the reaction committed, not left to the clock

    (run,) = condition.work(timezone.now())
    assert set(run.trigger_details) == {"job_completion", "sql_condition"}
    assert run.trigger == "JOB_COMPLETION" and state_of(c).pending_fire is None


def test_a_repaired_upstream_run_that_ends_again_is_a_new_completion(alice, pair):
    # A repair ends the run again (a new run.finished): its new end is what the trigger sees, so a
    # failed upstream run, once repaired, lets the downstream job go on, as the SDK's
    # last_seen_completion_time of the same run_id shows.
    a, b = pair
    c = watching(alice, a)
    failed = complete(a, R.FAILED)
    assert runs_of(c) == []
    repair_run(failed.id, rerun_all_failed_tasks=True)
    finish_run_with(Run.objects.get(id=failed.id), R.SUCCESS)

    (run,) = runs_of(c)
    assert run.trigger_details["job_completion"]["completed_jobs"][0]["run_id"] == str(failed.id)


# --- the job page ----------------------------------------------------------------------------


def test_the_job_page_shows_each_trigger_and_what_it_waits_for(alice, pair, client):
    a, b = pair
    c = make_job(alice, [shell("c")], name="downstream", triggers=[
        {"periodic": {"interval": 1, "unit": "HOURS"}},
        {"job_completion": {"jobs": [{"job_id": a.id}, {"job_id": b.id}]}}])
    ran_a = complete(a)
    complete(b, R.FAILED)
    client.force_login(alice)

    page = client.get(reverse("jobs:detail", args=[c.id])).content.decode()
    assert "Periodic + Job completion" in page
    assert f"job {a.id}: run {ran_a.id} counted; job {b.id}: waiting (its last run ended FAILED)" in page
    assert "#1 not_triggered" in page and "which does not match if_status SUCCESS" in page
    assert "Periodic + Job completion" in client.get(reverse("jobs:list")).content.decode()
