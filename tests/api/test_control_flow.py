"""Control flow through the API with real task processes (django-q2 sync mode): condition
tasks, task values between tasks, for-each loops, run-job tasks and partial runs."""

import pytest

from runs.models import Run, TaskRun
from tests.api.conftest import create_job, shell_task

pytestmark = pytest.mark.usefixtures("both_plannings")


@pytest.fixture
def committed(transactional_db):
    # Real commits: in sync mode an attempt runs when the transaction that enqueued it commits.
    return transactional_db


def set_values(key, values_json, **fields):
    """A shell task that sets task values by writing the values file dbutils would write."""
    return shell_task(key, f"echo '{values_json}' > \"$LAKEFLOW_TASK_VALUES_PATH\"", **fields)


def run_job(api, job_id, **body):
    run_id = api.post_ok("jobs/run-now", {"job_id": job_id, **body})["run_id"]
    return api.get_ok("jobs/runs/get", run_id=run_id)


def by_key(run):
    """The latest attempt of each task of a runs/get answer."""
    tasks = {}
    for task in run["tasks"]:
        tasks[task["task_key"]] = task
    return tasks


def result(task):
    return task["state"].get("result_state")


def log_of(api, task):
    return api.get_ok("jobs/runs/get-output", run_id=task["run_id"]).get("logs", "")


# --- condition_task --------------------------------------------------------------------------


def branch_job(api, op, left, right):
    return create_job(api, tasks=[
        set_values("produce", '{"n": 12, "flag": true}'),
        {"task_key": "check", "depends_on": [{"task_key": "produce"}],
         "condition_task": {"op": op, "left": left, "right": right}},
        shell_task("when_true", "echo yes", depends_on=()) | {"depends_on": [{"task_key": "check", "outcome": "true"}]},
        shell_task("when_false", "echo no") | {"depends_on": [{"task_key": "check", "outcome": "false"}]},
        shell_task("after_false", "echo after", depends_on=["when_false"]),
        shell_task("join", "echo joined") | {"depends_on": [{"task_key": "when_true"}, {"task_key": "when_false"}],
                                            "run_if": "NONE_FAILED"},
    ])


def test_an_if_else_runs_only_the_side_its_condition_took(api, committed):
    run = run_job(api, branch_job(api, "GREATER_THAN_OR_EQUAL", "{{tasks.produce.values.n}}", "12.0"))
    tasks = by_key(run)
    assert tasks["check"]["condition_task"]["outcome"] == "true"
    assert result(tasks["when_true"]) == "SUCCESS"
    assert result(tasks["when_false"]) == "EXCLUDED"
    assert result(tasks["after_false"]) == "EXCLUDED"  # all its parents excluded
    assert result(tasks["join"]) == "SUCCESS"
    assert run["state"]["result_state"] == "SUCCESS"


def test_equal_to_compares_text_so_12_is_not_12_point_0(api, committed):
    tasks = by_key(run_job(api, branch_job(api, "EQUAL_TO", "{{tasks.produce.values.n}}", "12.0")))
    assert tasks["check"]["condition_task"]["outcome"] == "false"
    assert result(tasks["when_false"]) == "SUCCESS" and result(tasks["when_true"]) == "EXCLUDED"


def test_a_boolean_task_value_compares_as_lowercase_text(api, committed):
    tasks = by_key(run_job(api, branch_job(api, "EQUAL_TO", "{{tasks.produce.values.flag}}", "true")))
    assert tasks["check"]["condition_task"]["outcome"] == "true"


def test_a_numeric_condition_on_text_fails_the_task_with_a_clear_message(api, committed):
    run = run_job(api, branch_job(api, "LESS_THAN", "abc", "3"))
    tasks = by_key(run)
    assert result(tasks["check"]) == "FAILED"
    assert "'abc' is not a number" in tasks["check"]["state"]["state_message"]
    assert result(tasks["when_true"]) == "UPSTREAM_FAILED"
    assert run["state"]["result_state"] == "FAILED"


def test_a_condition_on_a_task_value_that_was_never_set_fails(api, committed):
    tasks = by_key(run_job(api, branch_job(api, "EQUAL_TO", "{{tasks.produce.values.missing}}", "x")))
    assert result(tasks["check"]) == "FAILED"
    assert "could not be resolved" in tasks["check"]["state"]["state_message"]


# --- task values -----------------------------------------------------------------------------


def test_a_producer_value_reaches_its_consumer_through_a_reference(api, committed):
    job_id = create_job(api, tasks=[
        set_values("producer", '{"n": 41, "rows": [1, 2]}'),
        shell_task("consumer", 'echo "n={{tasks.producer.values.n}} rows={{tasks.producer.values.rows}}"',
                   depends_on=["producer"]),
    ])
    run = run_job(api, job_id)
    assert "n=41 rows=[1,2]" in log_of(api, by_key(run)["consumer"])


def test_values_of_a_task_kept_by_a_repair_reach_the_task_run_again(api, committed):
    job_id = create_job(api, tasks=[
        set_values("producer", '{"n": 7}'),
        shell_task("consumer", 'echo "n={{tasks.producer.values.n}}"; test -e /nonexistent-flag',
                   depends_on=["producer"]),
    ])
    run = run_job(api, job_id)
    assert run["state"]["result_state"] == "FAILED"
    api.post_ok("jobs/runs/repair", {"run_id": run["run_id"], "rerun_tasks": ["consumer"]})
    repaired = api.get_ok("jobs/runs/get", run_id=run["run_id"])
    consumer = by_key(repaired)["consumer"]
    assert consumer["run_id"] != by_key(run)["consumer"]["run_id"]
    assert "n=7" in log_of(api, consumer)


# --- for_each_task ---------------------------------------------------------------------------


def loop_task(inputs, nested_command, concurrency=1, **nested_fields):
    return {"task_key": "loop", "for_each_task": {
        "inputs": inputs, "concurrency": concurrency,
        "task": shell_task("item", nested_command, **nested_fields),
    }}


def iterations_of(api, task):
    return api.get_ok("jobs/runs/get", run_id=task["run_id"])["iterations"]


def test_a_for_each_runs_one_iteration_per_input_with_its_element(api, committed):
    job_id = create_job(api, tasks=[loop_task('[1, 2, 3]', 'echo "item={{input}}"', concurrency=2)])
    run = run_job(api, job_id)
    loop = by_key(run)["loop"]
    assert result(loop) == "SUCCESS"
    assert [t["task_key"] for t in run["tasks"]] == ["loop"]  # iterations are not tasks of the run
    stats = loop["for_each_task"]["stats"]["task_run_stats"]
    assert stats["total_iterations"] == 3 and stats["succeeded_iterations"] == 3
    assert stats["completed_iterations"] == 3 and stats["failed_iterations"] == 0
    iterations = iterations_of(api, loop)
    assert [i["iteration"] for i in iterations] == [{"index": 0, "input": 1}, {"index": 1, "input": 2},
                                                   {"index": 2, "input": 3}]
    assert [log_of(api, i).strip() for i in iterations] == ["item=1", "item=2", "item=3"]


def test_for_each_inputs_can_come_from_a_task_value_with_fields(api, committed):
    job_id = create_job(api, tasks=[
        set_values("list", '{"people": [{"name": "ada", "age": 36}, {"name": "alan", "age": 41}]}'),
        loop_task("{{tasks.list.values.people}}", 'echo "{{input.name}} is {{input.age}}"') | {
            "depends_on": [{"task_key": "list"}]},
    ])
    run = run_job(api, job_id)
    logs = [log_of(api, i).strip() for i in iterations_of(api, by_key(run)["loop"])]
    assert logs == ["ada is 36", "alan is 41"]


def test_for_each_inputs_that_are_not_an_array_fail_the_task(api, committed):
    job_id = create_job(api, parameters=[{"name": "items", "default": '{"a": 1}'}],
                        tasks=[loop_task("{{job.parameters.items}}", "echo {{input}}")])
    loop = by_key(run_job(api, job_id))["loop"]
    assert result(loop) == "FAILED"
    assert "must be a JSON array" in loop["state"]["state_message"]


def test_a_failing_iteration_is_retried_alone_then_fails_the_loop_with_stats(api, committed):
    command = 'test "{{input}}" != "2" || { echo "bad input" >&2; exit 3; }'
    job_id = create_job(api, tasks=[loop_task("[1, 2, 3]", command, concurrency=3, max_retries=1)])
    run = run_job(api, job_id)
    loop = by_key(run)["loop"]
    assert result(loop) == "FAILED"
    assert "1 of 3 iterations failed" in loop["state"]["state_message"]
    stats = loop["for_each_task"]["stats"]
    assert stats["task_run_stats"]["failed_iterations"] == 1
    assert stats["task_run_stats"]["succeeded_iterations"] == 2
    assert stats["error_message_stats"][0]["count"] == 1
    iterations = iterations_of(api, loop)
    assert [(i["iteration"]["index"], i["attempt_number"]) for i in iterations] == [(0, 0), (1, 0), (1, 1), (2, 0)]


def test_repairing_a_for_each_reruns_only_the_failed_iterations(api, committed, tmp_path):
    flag = tmp_path / "fixed"
    command = f'test "{{{{input}}}}" != "b" || test -e {flag}'
    job_id = create_job(api, tasks=[loop_task('["a", "b", "c"]', command, concurrency=2)])
    run = run_job(api, job_id)
    first = {i["iteration"]["index"]: i["run_id"] for i in iterations_of(api, by_key(run)["loop"])}
    assert result(by_key(run)["loop"]) == "FAILED"

    flag.write_text("")
    api.post_ok("jobs/runs/repair", {"run_id": run["run_id"], "rerun_all_failed_tasks": True})
    repaired = api.get_ok("jobs/runs/get", run_id=run["run_id"])
    loop = by_key(repaired)["loop"]
    assert result(loop) == "SUCCESS" and repaired["state"]["result_state"] == "SUCCESS"
    current = TaskRun.objects.filter(run_id=run["run_id"], for_each_key="loop", is_current=True)
    ids = {row.iteration: row.id for row in current}
    assert ids[0] == first[0] and ids[2] == first[2]  # kept
    assert ids[1] != first[1]  # re-run
    assert loop["for_each_task"]["stats"]["task_run_stats"]["succeeded_iterations"] == 3


def test_a_for_each_over_no_inputs_succeeds_at_once(api, committed):
    loop = by_key(run_job(api, create_job(api, tasks=[loop_task("[]", "echo never")])))["loop"]
    assert result(loop) == "SUCCESS"
    assert loop["for_each_task"]["stats"]["task_run_stats"]["total_iterations"] == 0


def test_canceling_a_for_each_stops_every_iteration(api, committed, held_broker):
    job_id = create_job(api, tasks=[loop_task("[1, 2, 3, 4]", "sleep 60", concurrency=2)])
    run_id = api.post_ok("jobs/run-now", {"job_id": job_id})["run_id"]
    from runs.control_flow import execute_control_flow

    execute_control_flow(held_broker.pop())  # the for-each starts and hands out two iterations
    pending = TaskRun.objects.filter(run_id=run_id, for_each_key="loop", life_cycle_state="PENDING")
    assert pending.count() == 2 and sorted(held_broker) == sorted(pending.values_list("id", flat=True))

    api.post_ok("jobs/runs/cancel", {"run_id": run_id})
    run = api.get_ok("jobs/runs/get", run_id=run_id)
    assert run["state"]["result_state"] == "CANCELED"
    assert result(by_key(run)["loop"]) == "CANCELED"
    states = TaskRun.objects.filter(run_id=run_id, for_each_key="loop").values_list("result_state", flat=True)
    assert sorted(states) == ["CANCELED"] * 4


# --- run_job_task ----------------------------------------------------------------------------


def test_a_run_job_task_starts_the_child_waits_and_follows_its_result(api, committed):
    child_id = create_job(api, name="child", parameters=[{"name": "who", "default": "nobody"}],
                          tasks=[shell_task("greet", 'echo "hello {{job.parameters.who}} via {{job.trigger.type}}"')])
    parent_id = create_job(api, name="parent", tasks=[
        {"task_key": "call", "run_job_task": {"job_id": child_id, "job_parameters": {"who": "{{job.name}}"}}},
        shell_task("after", "echo after", depends_on=["call"]),
    ])
    run = run_job(api, parent_id)
    call = by_key(run)["call"]
    assert result(call) == "SUCCESS" and result(by_key(run)["after"]) == "SUCCESS"
    output = api.get_ok("jobs/runs/get-output", run_id=call["run_id"])
    child = api.get_ok("jobs/runs/get", run_id=output["run_job_output"]["run_id"])
    assert child["job_id"] == child_id and child["trigger"] == "RUN_JOB_TASK"
    assert child["trigger_info"] == {"run_id": call["run_id"]}
    assert "hello parent via run_job_task" in log_of(api, child["tasks"][0])


def test_a_failing_child_fails_the_run_job_task(api, committed):
    child_id = create_job(api, name="child", tasks=[shell_task("boom", "exit 1")])
    run = run_job(api, create_job(api, tasks=[{"task_key": "call", "run_job_task": {"job_id": child_id}}]))
    call = by_key(run)["call"]
    assert result(call) == "FAILED"
    assert "ended FAILED" in call["state"]["state_message"]


def test_canceling_the_parent_cancels_the_child(api, committed, held_broker):
    child_id = create_job(api, name="child", tasks=[shell_task("slow", "sleep 60")])
    parent = api.post_ok("jobs/run-now", {"job_id": create_job(api, tasks=[
        {"task_key": "call", "run_job_task": {"job_id": child_id}}])})["run_id"]
    from runs.control_flow import execute_control_flow

    execute_control_flow(held_broker.pop())
    child = Run.objects.get(job_id=child_id)
    assert child.life_cycle_state == "RUNNING"
    api.post_ok("jobs/runs/cancel", {"run_id": parent})
    child.refresh_from_db()
    assert child.result_state == "CANCELED"
    run = api.get_ok("jobs/runs/get", run_id=parent)
    assert run["state"]["result_state"] == "CANCELED"
    assert result(by_key(run)["call"]) == "CANCELED"


def test_a_job_that_would_run_itself_is_rejected_at_save(api):
    a = create_job(api, name="a")
    b = create_job(api, name="b", tasks=[{"task_key": "call_a", "run_job_task": {"job_id": a}}])
    response = api.post("jobs/update", {"job_id": a, "new_settings": {
        "tasks": [{"task_key": "call_b", "run_job_task": {"job_id": b}}]}})
    assert response.status_code == 400
    assert f"job {a} would run itself: {a} -> {b} -> {a}" in response.json()["message"]
    assert "tasks[" in response.json()["message"] and "run_job_task.job_id" in response.json()["message"]


def test_a_run_job_task_naming_a_missing_job_is_rejected_at_save(api):
    response = api.post("jobs/create", {"name": "x", "tasks": [
        {"task_key": "call", "run_job_task": {"job_id": 987654}}]})
    assert response.status_code == 400 and "job 987654 does not exist" in response.json()["message"]


def test_an_unconfigured_warehouse_is_rejected_at_save(api):
    response = api.post("jobs/create", {"name": "x", "tasks": [
        {"task_key": "q", "sql_task": {"warehouse_id": "nope", "query": {"query_text": "select 1"}}}]})
    assert response.status_code == 400
    assert "SQL warehouse 'nope' is not configured" in response.json()["message"]


# --- partial runs ----------------------------------------------------------------------------


def chain_job(api):
    return create_job(api, tasks=[shell_task("a"), shell_task("b", depends_on=["a"]),
                                  shell_task("c", depends_on=["b"]), shell_task("d")])


@pytest.mark.parametrize("only, expected", [
    (["b"], ["b"]),
    (["+b"], ["a", "b"]),
    (["b+"], ["b", "c"]),
    (["+b+", "d"], ["a", "b", "c", "d"]),
])
def test_run_now_only_runs_the_selected_tasks(api, committed, only, expected):
    run = run_job(api, chain_job(api), only=only)
    assert [t["task_key"] for t in run["tasks"]] == expected
    assert run["state"]["result_state"] == "SUCCESS"


def test_run_now_only_with_an_unknown_task_is_a_400(api):
    response = api.post("jobs/run-now", {"job_id": chain_job(api), "only": ["b", "zz+"]})
    assert response.status_code == 400 and "zz+" in response.json()["message"]
