"""What each attempt consumed and cost is written with its end, and added to its run's sums in
the same transaction. Real task processes, run inline by django-q2's sync mode."""

import time

import pytest
from django.test import override_settings

from runs.admission import create_run
from runs.dispatch import finish_attempt
from runs.engine import endings
from runs.engine.states import RunResultState as R
from runs.executors.supervisor import Outcome
from runs.executors.usage import Usage
from runs.models import Run, TaskRun
from runs.usage import usage_fields
from tests.runs.conftest import make_job, shell

BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"


def python_task(tmp_path, key, source, **fields):
    script = tmp_path / f"{key}.py"
    script.write_text(source)
    return {"task_key": key, "spark_python_task": {"python_file": str(script)}, **fields}


def test_an_attempts_usage_and_cost_are_written_with_its_end_and_added_to_its_run(alice, tmp_path):
    job = make_job(alice, [python_task(tmp_path, "burn", BURN.format(seconds=0.2)),
                           shell("after", "echo done", depends_on=["burn"])])
    run, _ = create_run(job)
    run.refresh_from_db()

    attempts = {a.task_key: a for a in TaskRun.objects.filter(run=run)}
    assert {key: a.result_state for key, a in attempts.items()} == {"burn": R.SUCCESS, "after": R.SUCCESS}
    assert attempts["burn"].cpu_seconds >= 0.2 and attempts["burn"].peak_memory_bytes > 0
    for attempt in attempts.values():  # a 1 ms shell command may have no known peak (runs/executors/usage.py)
        assert attempt.cpu_seconds > 0 and attempt.cost > 0
        assert attempt.read_bytes >= 0 and attempt.written_bytes >= 0
        assert attempt.cleanup_duration_ms is not None
    assert run.cpu_seconds == pytest.approx(sum(a.cpu_seconds for a in attempts.values()))
    assert run.cost == pytest.approx(sum(a.cost for a in attempts.values()))


def test_a_retry_adds_its_own_usage_to_the_run(alice, tmp_path):
    job = make_job(alice, [python_task(tmp_path, "flaky", BURN.format(seconds=0.1) + "raise ValueError('again')\n",
                                       max_retries=1, min_retry_interval_millis=0)])
    run, _ = create_run(job)
    run.refresh_from_db()

    first, retry = TaskRun.objects.filter(run=run).order_by("attempt_number")
    assert (first.attempt_number, retry.attempt_number) == (0, 1)
    assert first.cpu_seconds >= 0.1 and retry.cpu_seconds >= 0.1
    assert run.cpu_seconds == pytest.approx(first.cpu_seconds + retry.cpu_seconds)
    assert run.cost == pytest.approx(first.cost + retry.cost)


@override_settings(LAKEFLOW_PRICE_PER_CPU_HOUR=3600.0, LAKEFLOW_PRICE_PER_GB_HOUR=0.0)
def test_the_cost_uses_the_prices_configured_when_the_attempt_ends(alice, tmp_path):
    job = make_job(alice, [python_task(tmp_path, "burn", BURN.format(seconds=0.1))])
    run, _ = create_run(job)

    attempt = TaskRun.objects.get(run=run)
    assert attempt.cost == pytest.approx(attempt.cpu_seconds)  # one unit per CPU-second


def test_memory_is_priced_per_gb_hour_of_the_processes_execution():
    outcome = Outcome(exit_code=0, timed_out=False, canceled=False, pid=1, duration_ms=7200,
                      usage=Usage(cpu_seconds=1.0, peak_memory_bytes=5 * 10**8, read_bytes=0, written_bytes=0),
                      ended_at=time.monotonic())
    with override_settings(LAKEFLOW_PRICE_PER_CPU_HOUR=0.0, LAKEFLOW_PRICE_PER_GB_HOUR=1000.0):
        fields = usage_fields(outcome)
    assert fields["cost"] == pytest.approx(0.5 * 7.2 / 3600 * 1000)  # 0.5 GB for 7.2 s
    assert fields["cpu_seconds"] == 1.0 and fields["peak_memory_bytes"] == 5 * 10**8
    assert fields["cleanup_duration_ms"] >= 0


def test_attempts_that_ran_no_process_leave_their_usage_null(alice, tmp_path):
    job = make_job(alice, [
        {"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}},
        {"task_key": "missing", "spark_python_task": {"python_file": str(tmp_path / "nope.py")}},
    ])
    run, _ = create_run(job)
    run.refresh_from_db()

    for attempt in TaskRun.objects.filter(run=run):
        assert attempt.result_state is not None
        assert (attempt.cpu_seconds, attempt.peak_memory_bytes, attempt.read_bytes, attempt.written_bytes,
                attempt.cost, attempt.cleanup_duration_ms) == (None,) * 6
    assert (run.cpu_seconds, run.cost) == (None, None)


def test_a_second_end_of_the_same_attempt_adds_nothing_to_the_run(alice):
    job = make_job(alice, [shell("a", "echo a")])
    run, _ = create_run(job)
    run.refresh_from_db()
    attempt = TaskRun.objects.get(run=run)

    # A redelivered message, or the reaper, ending it again with other figures: the
    # compare-and-swap refuses it, and with it the sums.
    assert not finish_attempt(attempt.id, endings.attempt_ended(R.SUCCESS), cpu_seconds=100.0, cost=1.0)
    assert Run.objects.values_list("cpu_seconds", "cost").get(id=run.id) == (run.cpu_seconds, run.cost)
    assert TaskRun.objects.get(id=attempt.id).cpu_seconds == attempt.cpu_seconds
