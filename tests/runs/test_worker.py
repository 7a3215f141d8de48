"""Real task processes, run inline by django-q2's sync mode (the broker's fast twin)."""

from runs.admission import create_run
from runs.engine.states import RunLifeCycleState as L, RunResultState as R
from runs.models import TaskRun
from tests.runs.conftest import make_job, shell


def attempts(run):
    return {a.task_key: a for a in TaskRun.objects.filter(run=run, is_current=True)}


def test_a_diamond_of_shell_tasks_runs_to_success_and_keeps_each_log(alice):
    job = make_job(alice, [
        shell("a") | {"shell_command_task": {"command": 'echo "a got $1"', "parameters": ["x y"]}},
        shell("b", "echo b", depends_on=["a"]),
        shell("c", "echo c", depends_on=["a"]),
        shell("d", "echo d", depends_on=["b", "c"]),
    ])
    run, _ = create_run(job)
    run.refresh_from_db()

    assert (run.life_cycle_state, run.result_state) == (L.TERMINATED, R.SUCCESS)
    by_key = attempts(run)
    assert {k: a.result_state for k, a in by_key.items()} == {k: R.SUCCESS for k in "abcd"}
    with open(by_key["a"].log_path) as log:
        assert log.read() == "a got x y\n"


def test_a_python_task_that_raises_records_the_error_and_traceback(alice, tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("def f():\n    raise KeyError('missing')\nf()\n")
    job = make_job(alice, [{"task_key": "py", "spark_python_task": {"python_file": str(script)}}])
    run, _ = create_run(job)

    py = attempts(run)["py"]
    assert py.result_state == R.FAILED
    assert py.error == "KeyError: 'missing'"
    assert "boom.py" in py.error_trace and "line 2" in py.error_trace


def test_a_script_that_does_not_exist_fails_its_task_with_a_clear_error(alice, tmp_path):
    job = make_job(alice, [{"task_key": "py", "spark_python_task": {"python_file": str(tmp_path / "nope.py")}}])
    run, _ = create_run(job)

    py = attempts(run)["py"]
    assert (py.result_state, py.termination_code) == (R.FAILED, "RESOURCE_NOT_FOUND")
    assert "nope.py" in py.state_message


def test_a_task_over_its_timeout_is_killed_and_timed_out(alice):
    job = make_job(alice, [shell("slow", "sleep 30", timeout_seconds=1)])
    run, _ = create_run(job)

    slow = attempts(run)["slow"]
    assert slow.result_state == R.TIMEDOUT
    assert (slow.ended_at - slow.started_at).total_seconds() < 10


def test_task_values_flow_to_a_downstream_reference(alice, tmp_path):
    producer = tmp_path / "producer.py"
    producer.write_text("dbutils.jobs.taskValues.set('n', 7)\n")
    job = make_job(alice, [
        {"task_key": "producer", "spark_python_task": {"python_file": str(producer)}},
        shell("consumer", 'echo "n=$1"', depends_on=["producer"]) | {
            "shell_command_task": {"command": 'echo "n=$1"', "parameters": ["{{tasks.producer.values.n}}"]}},
    ])
    run, _ = create_run(job)

    consumer = attempts(run)["consumer"]
    assert consumer.result_state == R.SUCCESS
    with open(consumer.log_path) as log:
        assert log.read() == "n=7\n"


def test_a_running_task_writes_its_pid_at_its_first_heartbeat_and_a_quick_one_with_its_finish(
        alice, monkeypatch, settings):
    from runs import worker

    settings.LAKEFLOW_HEARTBEAT_SECONDS = 0.5
    beats = []
    monkeypatch.setattr(worker, "beat", lambda attempt_id, **fields: beats.append((attempt_id, fields)))
    job = make_job(alice, [shell("quick", "true"), shell("slow", "sleep 1.3", depends_on=["quick"])])
    run, _ = create_run(job)

    by_key = attempts(run)
    assert by_key["quick"].process_id and by_key["quick"].log_path  # written with its finish
    assert {attempt_id for attempt_id, _ in beats} == {by_key["slow"].id}
    first, *later = [fields for _, fields in beats]
    assert first["process_id"] == by_key["slow"].process_id
    assert first["log_path"] == by_key["slow"].log_path
    assert later and all(fields == {} for fields in later)
