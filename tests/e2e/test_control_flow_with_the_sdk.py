"""Issue 3's "done when", through the official databricks-sdk against real processes (embedded
`serve` and web + qcluster on Postgres + Redis): branches, task values, for-each, run-job,
notebooks and SQL on DuckDB and Postgres, and the repair of a failed for-each iteration."""

import secrets
from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

from tests.e2e.test_core_with_the_sdk import WAIT, python_task, tasks_by_key

pytestmark = pytest.mark.e2e


def result(task):
    return task.state.result_state


def test_an_if_else_branch_runs_only_the_taken_side(server):
    w = server.client()
    job = w.jobs.create(name="branch", tasks=[
        python_task(server, "producer", "produce.py", "12"),
        jobs.Task(task_key="big", depends_on=[jobs.TaskDependency(task_key="producer")],
                  condition_task=jobs.ConditionTask(op=jobs.ConditionTaskOp.GREATER_THAN,
                                                    left="{{tasks.producer.values.n}}", right="10")),
        jobs.Task(task_key="yes", depends_on=[jobs.TaskDependency(task_key="big", outcome="true")],
                  spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py"), parameters=["yes"])),
        jobs.Task(task_key="no", depends_on=[jobs.TaskDependency(task_key="big", outcome="false")],
                  spark_python_task=jobs.SparkPythonTask(python_file=server.script("ok.py"), parameters=["no"])),
    ])
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    t = tasks_by_key(run)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert t["big"].condition_task.outcome == "true"
    assert result(t["yes"]) == jobs.RunResultState.SUCCESS
    assert result(t["no"]) == jobs.RunResultState.EXCLUDED


def test_a_producer_value_reaches_its_consumer(server):
    w = server.client()
    job = w.jobs.create(name="values", tasks=[
        python_task(server, "producer", "produce.py", "41"),
        python_task(server, "consumer", "consume.py", "n={{tasks.producer.values.n}}", depends_on=["producer"]),
    ])
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert "consumed n=41 values: 41" in w.jobs.get_run_output(tasks_by_key(run)["consumer"].run_id).logs


def for_each_job(w, server, inputs, *item_args, concurrency=2):
    return w.jobs.create(name="loop", tasks=[
        jobs.Task(task_key="loop", for_each_task=jobs.ForEachTask(
            inputs=inputs, concurrency=concurrency,
            task=python_task(server, "item", "item.py", "{{input}}", *item_args))),
    ])


def test_a_for_each_over_three_inputs_with_concurrency_two_runs_three_iterations(server, tmp_path):
    w = server.client()
    # Each iteration waits until two have started: two must run at once (concurrency 2), and they
    # overlap by construction, not because the machine happened to be fast enough.
    met = tmp_path / f"met-{secrets.token_hex(3)}"
    job = w.jobs.create(name="loop", tasks=[jobs.Task(task_key="loop", for_each_task=jobs.ForEachTask(
        inputs="[1,2,3]", concurrency=2,
        task=python_task(server, "item", "rendezvous.py", str(met), "{{input}}", "2")))])
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    loop = tasks_by_key(run)["loop"]
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    stats = loop.for_each_task.stats.task_run_stats
    assert (stats.total_iterations, stats.succeeded_iterations, stats.failed_iterations) == (3, 3, 0)
    iterations = w.jobs.get_run(loop.run_id).iterations
    assert len(iterations) == 3
    logs = sorted(w.jobs.get_run_output(i.run_id).logs.strip() for i in iterations)
    assert logs == ["item 1", "item 2", "item 3"]
    # Concurrency 2: never all three at once (what the system guarantees), and the first two
    # overlapped (what the rendezvous forces).
    spans = sorted((i.start_time, i.end_time) for i in iterations)
    assert spans[1][0] < spans[0][1], spans
    assert not (spans[2][0] < spans[0][1] and spans[2][0] < spans[1][1]), spans


def finished_run(w, run_id):
    """The run once it ended, whatever its result (the SDK's waiter raises on a failure)."""
    return w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=WAIT)


def iteration_ids(w, for_each_run_id):
    """{input: task run id} of a for-each task run's latest iteration attempts. The SDK drops the
    `iteration` field it does not know, so this reads the raw answer."""
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": for_each_run_id})
    return {item["iteration"]["input"]: item["run_id"] for item in raw["iterations"]}


def test_repair_of_a_failed_for_each_iteration_reruns_only_what_failed(server, tmp_path):
    w = server.client()
    fixed = tmp_path / f"fixed-{secrets.token_hex(3)}"
    job = for_each_job(w, server, '["a","b","c"]', "b", str(fixed))
    run = finished_run(w, w.jobs.run_now(job_id=job.job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.FAILED
    loop = tasks_by_key(run)["loop"]
    assert loop.for_each_task.stats.task_run_stats.failed_iterations == 1

    fixed.write_text("")
    w.jobs.repair_run(run_id=run.run_id, rerun_all_failed_tasks=True).result(timeout=WAIT)
    repaired = w.jobs.get_run(run.run_id, include_history=True)
    assert repaired.state.result_state == jobs.RunResultState.SUCCESS
    new_loop = tasks_by_key(repaired)["loop"]
    assert new_loop.run_id != loop.run_id
    first, current = iteration_ids(w, loop.run_id), iteration_ids(w, new_loop.run_id)
    assert current["a"] == first["a"] and current["c"] == first["c"]
    assert current["b"] != first["b"]
    assert len(repaired.repair_history) == 2


def test_a_run_job_task_waits_for_its_child(server):
    w = server.client()
    child = w.jobs.create(name="child", parameters=[jobs.JobParameterDefinition(name="who", default="x")],
                          tasks=[python_task(server, "work", "ok.py", "1", "{{job.parameters.who}}")])
    parent = w.jobs.create(name="parent", tasks=[
        jobs.Task(task_key="call", run_job_task=jobs.RunJobTask(job_id=child.job_id,
                                                                job_parameters={"who": "parent"})),
        python_task(server, "after", "ok.py", "after", depends_on=["call"]),
    ])
    run = w.jobs.run_now(job_id=parent.job_id).result(timeout=WAIT)
    t = tasks_by_key(run)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    child_run = w.jobs.get_run(w.jobs.get_run_output(t["call"].run_id).run_job_output.run_id)
    assert child_run.job_id == child.job_id
    assert child_run.trigger == jobs.TriggerType.RUN_JOB_TASK
    assert child_run.trigger_info.run_id == t["call"].run_id
    # The parent task ended only after its child did, and "after" started after that.
    assert t["call"].end_time >= child_run.end_time
    assert t["after"].start_time >= t["call"].end_time
    assert "ok 1 parent" in w.jobs.get_run_output(child_run.tasks[0].run_id).logs


def test_a_notebook_with_widgets_returns_its_exit_value(server):
    w = server.client()
    job = w.jobs.create(name="notebook", parameters=[jobs.JobParameterDefinition(name="who", default="nobody")],
                        tasks=[jobs.Task(task_key="nb", notebook_task=jobs.NotebookTask(
                            notebook_path=server.script("widgets_notebook"),  # no extension, as on Databricks
                            base_parameters={"greeting": "hi"}))])
    run = w.jobs.run_now(job_id=job.job_id, job_parameters={"who": "sdk"}).result(timeout=WAIT)
    nb = tasks_by_key(run)["nb"]
    output = w.jobs.get_run_output(nb.run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, output.error
    assert output.notebook_output.result == "hi sdk"
    assert not output.notebook_output.truncated
    views = w.jobs.export_run(nb.run_id, views_to_export=jobs.ViewsToExport.CODE).views
    assert len(views) == 1 and views[0].type == jobs.ViewType.NOTEBOOK
    content = views[0].content
    assert "hi sdk" in content  # the first cell's printed output
    assert content.count("must not run") == 1  # the last cell's source is shown, but it never ran


def sql_preview(w, task_run_id):
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get-output", query={"run_id": task_run_id})
    return raw["sql_output"]["query_output"]


def test_a_sql_task_on_duckdb_returns_a_preview_that_a_downstream_task_reads(server):
    w = server.client()
    job = w.jobs.create(name="duckdb", parameters=[jobs.JobParameterDefinition(name="limit_n", default="3")], tasks=[
        jobs.Task(task_key="report", sql_task=jobs.SqlTask(
            warehouse_id="default", file=jobs.SqlTaskFile(path=server.script("report.sql")))),
        python_task(server, "use", "ok.py", "{{tasks.report.output.first_row.square}}",
                    "{{tasks.report.output.rows}}", depends_on=["report"]),
    ])
    run = w.jobs.run_now(job_id=job.job_id, job_parameters={"limit_n": "4"}).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    t = tasks_by_key(run)
    output = w.jobs.get_run_output(t["report"].run_id)
    assert output.sql_output.query_output.warehouse_id == "default"
    preview = sql_preview(w, t["report"].run_id)
    assert preview["columns"] == ["n", "square"]
    assert preview["rows"] == [{"n": 0, "square": 0}, {"n": 1, "square": 1}, {"n": 2, "square": 4},
                               {"n": 3, "square": 9}]
    logs = w.jobs.get_run_output(t["use"].run_id).logs
    assert 'ok 0 [{"n":0,"square":0},{"n":1,"square":1}' in logs


def test_a_sql_task_on_postgres_returns_a_preview(server):
    w = server.client()
    table = f"e2e_sql_{secrets.token_hex(4)}"
    # query_text is this server's extension for inline SQL (there are no saved queries), which
    # the SDK's SqlTaskQuery does not know: the job goes in as raw JSON.
    query_text = (f"CREATE TABLE {table} (id int, label text);\n"
                  f"INSERT INTO {table} VALUES (1, :label), (2, 'plain');\n"
                  f"SELECT id, label FROM {table} WHERE label LIKE '%100%%' OR id = 2 ORDER BY id;\n"
                  f"DROP TABLE {table};")
    job = jobs.CreateResponse.from_dict(w.api_client.do("POST", "/api/2.2/jobs/create", body={
        "name": "postgres", "tasks": [{"task_key": "q", "sql_task": {
            "warehouse_id": "pg", "parameters": {"label": "it's 100%"}, "query": {"query_text": query_text}}}]}))
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    preview = sql_preview(w, tasks_by_key(run)["q"].run_id)
    assert preview["rows"] == [{"id": 1, "label": "it's 100%"}, {"id": 2, "label": "plain"}]


def test_a_sql_error_fails_the_task_with_the_database_message(server):
    w = server.client()
    job = w.jobs.create(name="bad-sql", tasks=[jobs.Task(task_key="q", sql_task=jobs.SqlTask(
        warehouse_id="default", file=jobs.SqlTaskFile(path=server.script("report.sql"))))])
    # report.sql needs :limit_n and this job defines no such parameter.
    run = finished_run(w, w.jobs.run_now(job_id=job.job_id).run_id)
    q = tasks_by_key(run)["q"]
    assert q.state.result_state == jobs.RunResultState.FAILED
    assert "limit_n" in w.jobs.get_run_output(q.run_id).error


def test_a_for_each_over_a_thousand_inputs_runs_every_iteration(server):
    w = server.client()
    job = w.jobs.create(name="thousand", parameters=[
        jobs.JobParameterDefinition(name="inputs", default=str(list(range(1000))))], tasks=[
        jobs.Task(task_key="loop", for_each_task=jobs.ForEachTask(
            inputs="{{job.parameters.inputs}}", concurrency=100,
            task=python_task(server, "item", "item.py", "{{input}}")))])
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=timedelta(minutes=10))
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    stats = tasks_by_key(run)["loop"].for_each_task.stats.task_run_stats
    assert (stats.total_iterations, stats.succeeded_iterations, stats.completed_iterations) == (1000, 1000, 1000)
