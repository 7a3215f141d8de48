import copy

import pytest

from jobs.spec.task_types import unsupported_tasks
from jobs.spec.settings import (
    EXECUTABLE_TASK_TYPES,
    Problem,
    SettingsInvalid,
    task_type_of,
    validate_job_settings,
)


def notebook(key, *upstream, **extra):
    task = {"task_key": key, "notebook_task": {"notebook_path": f"/Jobs/{key}"}}
    if upstream:
        task["depends_on"] = [{"task_key": up} for up in upstream]
    task.update(extra)
    return task


def typed(key, kind, block, **extra):
    return {"task_key": key, kind: block, **extra}


def job(*tasks, **fields):
    return {"name": "nightly", "tasks": list(tasks), **fields}


def problems_of(data, **options):
    """{path: message} for every problem; fails the test if the settings are valid."""
    with pytest.raises(SettingsInvalid) as caught:
        validate_job_settings(data, **options)
    return {problem.path: problem.message for problem in caught.value.problems}


# --- job fields -------------------------------------------------------------------


def test_settings_must_be_an_object():
    assert problems_of(["not", "a", "job"]) == {"settings": "must be a JSON object"}


@pytest.mark.parametrize("fields, path, message", [
    ({"name": 7}, "name", "must be a string"),
    ({"name": "é" * 2049}, "name", "must be at most 4,096 bytes in UTF-8"),
    ({"description": "x" * 27_701}, "description", "must be at most 27,700 characters"),
    ({"tags": ["team"]}, "tags", "must be an object"),
    ({"tags": {"team": 5}}, "tags.team", "must be a string"),
    ({"tags": {f"t{i}": "v" for i in range(26)}}, "tags", "a job may have at most 25 tags; this one has 26"),
    ({"max_concurrent_runs": 1001}, "max_concurrent_runs", "must be between 0 and 1,000"),
    ({"max_concurrent_runs": -1}, "max_concurrent_runs", "must be between 0 and 1,000"),
    ({"max_concurrent_runs": True}, "max_concurrent_runs", "must be an integer"),
    ({"max_concurrent_runs": 2.0}, "max_concurrent_runs", "must be an integer"),
    ({"timeout_seconds": -5}, "timeout_seconds", "must be between 0 and 2,147,483,647"),
    ({"queue": True}, "queue", "must be an object"),
    ({"queue": {}}, "queue.enabled", "is required"),
    ({"queue": {"enabled": "yes"}}, "queue.enabled", "must be true or false"),
    ({"parameters": {"env": "prod"}}, "parameters", "must be a list of {name, default}"),
    ({"parameters": ["env"]}, "parameters[0]", "must be an object with name and default"),
    ({"parameters": [{"default": "x"}]}, "parameters[0].name", "is required"),
    ({"parameters": [{"name": "my env", "default": "x"}]}, "parameters[0].name",
     "'my env' may only contain letters, digits, _, . and -"),
    ({"parameters": [{"name": "env"}]}, "parameters[0].default", "is required"),
    ({"parameters": [{"name": "env", "default": 1}]}, "parameters[0].default", "must be a string"),
    ({"parameters": [{"name": "env", "default": "a"}, {"name": "env", "default": "b"}]},
     "parameters[1].name", "duplicate parameter name 'env'"),
    ({"tasks": {"a": {}}}, "tasks", "must be a list of tasks"),
    ({"schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"},
      "continuous": {"pause_status": "UNPAUSED"}}, "continuous",
     "cannot be combined with schedule; a job runs on one of schedule, trigger or continuous: "
     "remove continuous or schedule"),
])
def test_each_job_field_check_reports_its_own_path(fields, path, message):
    assert problems_of(job(notebook("a"), **fields)) == {path: message}


def test_job_parameter_names_may_use_dots_and_dashes():
    settings = validate_job_settings(job(parameters=[{"name": "run.date-v_2", "default": ""}]))
    assert settings["parameters"] == [{"name": "run.date-v_2", "default": ""}]


def test_more_than_a_thousand_tasks_are_rejected_naming_the_limit():
    problems = problems_of(job(*[notebook(f"t{i}") for i in range(1001)]))
    assert problems == {"tasks": "a job may have at most 1,000 tasks; this one has 1,001"}


def test_several_problems_are_all_collected_at_once():
    data = job(
        notebook("a", "ghost", run_if="SOMETIMES"),
        {"notebook_task": {"notebook_path": "/x"}},
        name=5, max_concurrent_runs=-3,
    )
    assert problems_of(data) == {
        "name": "must be a string",
        "max_concurrent_runs": "must be between 0 and 1,000",
        "tasks[0].run_if": "must be one of ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, NONE_FAILED, "
                           "ALL_DONE, AT_LEAST_ONE_FAILED, ALL_FAILED",
        "tasks[0].depends_on[0].task_key": "there is no task 'ghost' in this job",
        "tasks[1].task_key": "is required",
    }


def test_the_exception_text_joins_path_and_message():
    error = SettingsInvalid([Problem("name", "must be a string"), Problem("tasks", "bad")])
    assert str(error) == "name: must be a string; tasks: bad"
    assert error.problems[1] == Problem("tasks", "bad")


# --- common task fields -----------------------------------------------------------


@pytest.mark.parametrize("extra, path, message", [
    ({"run_if": "ALWAYS"}, "tasks[0].run_if", "must be one of ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, "
                                              "NONE_FAILED, ALL_DONE, AT_LEAST_ONE_FAILED, ALL_FAILED"),
    ({"max_retries": -2}, "tasks[0].max_retries", "must be between -1 and 2,147,483,647"),
    ({"max_retries": True}, "tasks[0].max_retries", "must be an integer"),
    ({"min_retry_interval_millis": -1}, "tasks[0].min_retry_interval_millis", "must be between 0 and 2,147,483,647"),
    ({"retry_on_timeout": "yes"}, "tasks[0].retry_on_timeout", "must be true or false"),
    ({"disabled": 1}, "tasks[0].disabled", "must be true or false"),
    ({"timeout_seconds": -1}, "tasks[0].timeout_seconds", "must be between 0 and 2,147,483,647"),
    ({"timeout_seconds": False}, "tasks[0].timeout_seconds", "must be an integer"),
    ({"task_key": "my task"}, "tasks[0].task_key", "'my task' may only contain letters, digits, _ and -"),
    ({"task_key": "k" * 101}, "tasks[0].task_key", "must be at most 100 characters"),
    ({"task_key": 3}, "tasks[0].task_key", "must be a string"),
    ({"depends_on": "b"}, "tasks[0].depends_on", "must be a list"),
    ({"depends_on": ["b"]}, "tasks[0].depends_on[0]", "must be an object with a task_key"),
    ({"depends_on": [{}]}, "tasks[0].depends_on[0].task_key", "is required"),
    ({"depends_on": [{"task_key": "b"}, {"task_key": "b"}]}, "tasks[0].depends_on[1].task_key",
     "'b' is listed more than once"),
    ({"depends_on": [{"task_key": "b", "outcome": "true"}]}, "tasks[0].depends_on[0].outcome",
     "only allowed when depending on a condition_task; 'b' is not one"),
])
def test_each_task_field_check_reports_its_own_path(extra, path, message):
    assert problems_of(job(notebook("a", **extra), notebook("b"))) == {path: message}


def test_a_task_without_a_key_is_named_by_position():
    assert problems_of(job(notebook("a"), {"notebook_task": {"notebook_path": "/x"}})) == {
        "tasks[1].task_key": "is required"}


def test_a_task_that_is_not_an_object_is_rejected():
    assert problems_of(job(notebook("a"), "b")) == {"tasks[1]": "must be an object"}


def test_a_duplicate_task_key_is_named_with_its_first_use():
    assert problems_of(job(notebook("a"), notebook("b"), notebook("a"))) == {
        "tasks[2].task_key": "duplicate task_key 'a' (also tasks[0])"}


def test_a_dependency_on_a_missing_task_is_named():
    assert problems_of(job(notebook("a", "ghost"))) == {
        "tasks[0].depends_on[0].task_key": "there is no task 'ghost' in this job"}


def test_a_task_may_not_depend_on_itself():
    assert problems_of(job(notebook("a"), notebook("b", "a", "b"))) == {
        "tasks[1].depends_on[1].task_key": "task 'b' cannot depend on itself"}


def test_a_two_cycle_is_rejected_with_its_path():
    assert problems_of(job(notebook("a", "b"), notebook("b", "a"))) == {
        "tasks": "dependency cycle a -> b -> a"}


def test_a_three_cycle_is_rejected_with_its_path():
    data = job(notebook("start"), notebook("a", "start", "c"), notebook("b", "a"), notebook("c", "b"))
    assert problems_of(data) == {"tasks": "dependency cycle a -> c -> b -> a"}


def condition(key, *upstream):
    task = typed(key, "condition_task", {"op": "EQUAL_TO", "left": "1", "right": "1"})
    if upstream:
        task["depends_on"] = [{"task_key": up} for up in upstream]
    return task


def test_outcome_is_accepted_on_a_condition_parent():
    data = job(condition("check"), notebook("yes", depends_on=[{"task_key": "check", "outcome": "true"}]),
               notebook("no", depends_on=[{"task_key": "check", "outcome": "false"}]))
    settings = validate_job_settings(data)
    assert settings["tasks"][2]["depends_on"] == [{"task_key": "check", "outcome": "false"}]


def test_outcome_must_be_true_or_false():
    data = job(condition("check"), notebook("yes", depends_on=[{"task_key": "check", "outcome": "yes"}]))
    assert problems_of(data) == {"tasks[1].depends_on[0].outcome": 'must be "true" or "false"'}


# --- task types -------------------------------------------------------------------


def test_a_task_without_a_type_lists_the_types_to_choose_from():
    problems = problems_of(job({"task_key": "a"}))
    assert problems == {"tasks[0]": "task has no task type: set one of " + ", ".join(EXECUTABLE_TASK_TYPES)}
    assert "shell_command_task" in problems["tasks[0]"]


def test_a_task_with_two_types_names_both():
    task = notebook("a", sql_task={"warehouse_id": "w", "query": {"query_id": "q"}})
    assert problems_of(job(task)) == {
        "tasks[0]": "task has more than one task type: notebook_task and sql_task"}


@pytest.mark.parametrize("kind", ["spark_jar_task", "pipeline_task", "dbt_cloud_task", "dashboard_task",
                                  "power_bi_task", "python_operator_task", "clean_rooms_notebook_task"])
def test_databricks_task_types_we_cannot_run_are_kept_as_written(kind):
    block = {"pipeline_id": "p-1", "full_refresh": True} if kind == "pipeline_task" else {"anything": [1, "x"]}
    settings = validate_job_settings(job(typed("a", kind, block)))
    assert settings["tasks"][0][kind] == block
    assert unsupported_tasks(settings) == [("a", kind)]
    assert problems_of(job(typed("a", kind, "not an object"))) == {f"tasks[0].{kind}": "must be an object"}


def test_task_type_of_names_the_one_type_present():
    assert task_type_of(notebook("a")) == "notebook_task"
    assert task_type_of(typed("a", "spark_jar_task", {})) == "spark_jar_task"
    assert task_type_of({"task_key": "a"}) is None


@pytest.mark.parametrize("kind, block, path, message", [
    ("notebook_task", "/x", "notebook_task", "must be an object"),
    ("spark_python_task", {}, "spark_python_task.python_file", "is required"),
    ("spark_python_task", {"python_file": "a.py", "parameters": ["x", 1]},
     "spark_python_task.parameters[1]", "must be a string"),
    ("spark_python_task", {"python_file": "a.py", "source": "S3"},
     "spark_python_task.source", "must be one of WORKSPACE, GIT"),
    ("python_wheel_task", {"package_name": "etl"}, "python_wheel_task.entry_point", "is required"),
    ("python_wheel_task", {"package_name": "etl", "entry_point": "main", "parameters": ["a"],
                           "named_parameters": {"b": "c"}},
     "python_wheel_task", "set parameters or named_parameters, not both"),
    ("python_wheel_task", {"package_name": "etl", "entry_point": "main", "named_parameters": {"b": 2}},
     "python_wheel_task.named_parameters.b", "must be a string"),
    ("shell_command_task", {"command": "  "}, "shell_command_task.command", "must not be empty"),
    ("shell_command_task", {}, "shell_command_task.command", "is required"),
    ("shell_command_task", {"command": "ls", "parameters": "-la"},
     "shell_command_task.parameters", "must be a list of strings"),
    ("notebook_task", {}, "notebook_task.notebook_path", "is required"),
    ("notebook_task", {"notebook_path": "/n", "base_parameters": {"day": 1}},
     "notebook_task.base_parameters.day", "must be a string"),
    ("sql_task", {"query": {"query_text": "select 1"}}, "sql_task.warehouse_id", "is required"),
    ("sql_task", {"warehouse_id": "w", "query": {}}, "sql_task.query.query_id", "is required"),
    ("sql_task", {"warehouse_id": "w"}, "sql_task", "set exactly one of query, file, alert, dashboard"),
    ("sql_task", {"warehouse_id": "w", "query": {"query_text": "select 1"}, "file": {"path": "a.sql"}},
     "sql_task", "set exactly one of query, file, alert, dashboard (found query and file)"),
    ("sql_task", {"warehouse_id": "w", "alert": {}}, "sql_task.alert.alert_id", "is required"),
    ("sql_task", {"warehouse_id": "w", "file": {"path": "a.sql"}, "parameters": {"n": 1}},
     "sql_task.parameters.n", "must be a string"),
    ("condition_task", {"op": "LIKE", "left": "a", "right": "b"}, "condition_task.op",
     "must be one of EQUAL_TO, NOT_EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, "
     "LESS_THAN_OR_EQUAL"),
    ("condition_task", {"op": "EQUAL_TO", "left": "a"}, "condition_task.right", "is required"),
    ("condition_task", {"op": "EQUAL_TO", "left": 1, "right": "1"}, "condition_task.left",
     "must be a string"),
    ("run_job_task", {}, "run_job_task.job_id", "is required"),
    ("run_job_task", {"job_id": "twelve"}, "run_job_task.job_id", "must be an integer"),
    ("run_job_task", {"job_id": True}, "run_job_task.job_id", "must be an integer"),
    ("run_job_task", {"job_id": 12, "job_parameters": {"env": 1}},
     "run_job_task.job_parameters.env", "must be a string"),
])
def test_each_task_type_shape_check_reports_its_own_path(kind, block, path, message):
    assert problems_of(job(typed("a", kind, block))) == {f"tasks[0].{path}": message}


def test_every_executable_task_type_accepts_a_minimal_block():
    data = job(
        typed("py", "spark_python_task", {"python_file": "etl.py", "parameters": ["--day", "1"]}),
        typed("whl", "python_wheel_task", {"package_name": "etl", "entry_point": "main"}),
        typed("sh", "shell_command_task", {"command": "echo \"$1\"", "parameters": ["hi"]}),
        notebook("nb"),
        typed("sql", "sql_task", {"warehouse_id": "w", "file": {"path": "q.sql", "source": "WORKSPACE"}}),
        condition("cond"),
        typed("each", "for_each_task", {"inputs": "[1, 2]", "task": notebook("each_one")}),
        typed("child", "run_job_task", {"job_id": 7, "job_parameters": {"env": "dev"}}),
        typed("dbt", "dbt_task", {"commands": ["dbt run"]}),
    )
    settings = validate_job_settings(data)
    assert [task_type_of(t) for t in settings["tasks"]] == list(EXECUTABLE_TASK_TYPES)


def for_each(key, nested, **block):
    return typed(key, "for_each_task", {"inputs": '["a", "b"]', "task": nested, **block})


@pytest.mark.parametrize("block, path, message", [
    ({"inputs": "1, 2"}, "inputs", "must be a JSON array or a {{...}} reference"),
    ({"inputs": '{"a": 1}'}, "inputs", "must be a JSON array or a {{...}} reference"),
    ({"inputs": None}, "inputs", "is required"),  # null is absent
    ({"concurrency": 0}, "concurrency", "must be between 1 and 100"),
    ({"concurrency": 101}, "concurrency", "must be between 1 and 100"),
])
def test_for_each_wrapper_checks_report_their_own_path(block, path, message):
    assert problems_of(job(for_each("each", notebook("one"), **block))) == {
        f"tasks[0].for_each_task.{path}": message}


def test_a_for_each_needs_inputs_and_a_task():
    assert problems_of(job(typed("each", "for_each_task", {}))) == {
        "tasks[0].for_each_task.inputs": "is required",
        "tasks[0].for_each_task.task": "is required",
    }


def test_the_nested_task_is_validated_with_the_same_rules_under_its_own_path():
    nested = {"task_key": "one", "notebook_task": {}, "max_retries": -5}
    assert problems_of(job(for_each("each", nested))) == {
        "tasks[0].for_each_task.task.max_retries": "must be between -1 and 2,147,483,647",
        "tasks[0].for_each_task.task.notebook_task.notebook_path": "is required",
    }


def test_a_for_each_cannot_nest_another_for_each():
    inner = for_each("inner", notebook("leaf"))
    assert problems_of(job(for_each("outer", inner))) == {
        "tasks[0].for_each_task.task.for_each_task":
            "a for-each task cannot run another for-each task; use a run_job_task"}


def test_the_nested_task_cannot_have_dependencies():
    assert problems_of(job(notebook("b"), for_each("each", notebook("one", "b")))) == {
        "tasks[1].for_each_task.task.depends_on": "the task inside a for-each task cannot depend on others"}


def test_inputs_may_be_a_reference_and_the_nested_task_may_use_input():
    nested = notebook("one", notebook_task={"notebook_path": "/n", "base_parameters": {"city": "{{input.city}}"}})
    data = job(for_each("each", nested, inputs="{{job.parameters.cities}}", concurrency=100),
               parameters=[{"name": "cities", "default": '[{"city": "Oslo"}]'}])
    settings = validate_job_settings(data)
    assert settings["tasks"][0]["for_each_task"]["task"]["notebook_task"]["base_parameters"] == {
        "city": "{{input.city}}"}


# --- references inside task blocks ------------------------------------------------


@pytest.mark.parametrize("kind, block, path", [
    ("spark_python_task", {"python_file": "{{job.naem}}.py"}, "spark_python_task.python_file"),
    ("spark_python_task", {"python_file": "a.py", "parameters": ["ok", "{{job.naem}}"]},
     "spark_python_task.parameters[1]"),
    ("python_wheel_task", {"package_name": "p", "entry_point": "e", "named_parameters": {"d": "{{job.naem}}"}},
     "python_wheel_task.named_parameters.d"),
    ("shell_command_task", {"command": "echo {{job.naem}}"}, "shell_command_task.command"),
    ("notebook_task", {"notebook_path": "/n", "base_parameters": {"d": "{{job.naem}}"}},
     "notebook_task.base_parameters.d"),
    ("sql_task", {"warehouse_id": "w", "query": {"query_text": "q"}, "parameters": {"d": "{{job.naem}}"}},
     "sql_task.parameters.d"),
    ("condition_task", {"op": "EQUAL_TO", "left": "{{job.naem}}", "right": "x"}, "condition_task.left"),
    ("condition_task", {"op": "EQUAL_TO", "left": "x", "right": "{{job.naem}}"}, "condition_task.right"),
    ("run_job_task", {"job_id": 1, "job_parameters": {"d": "{{job.naem}}"}}, "run_job_task.job_parameters.d"),
    ("for_each_task", {"inputs": "{{job.naem}}", "task": notebook("one")}, "for_each_task.inputs"),
])
def test_a_bad_reference_is_reported_at_the_string_that_holds_it(kind, block, path):
    assert problems_of(job(typed("a", kind, block))) == {
        f"tasks[0].{path}": "unknown reference {{job.naem}}: job has no field 'naem'"}


def test_references_are_checked_against_this_jobs_tasks_and_parameters():
    data = job(
        notebook("extract"),
        typed("load", "shell_command_task", {
            "command": "load {{tasks.extract.values.n}} {{job.parameters.env}} {{tasks.nope.run_id}}"}),
        parameters=[{"name": "env", "default": "prod"}],
    )
    assert problems_of(data) == {
        "tasks[1].shell_command_task.command": "unknown reference {{tasks.nope.run_id}}: there is no task 'nope'"}


def test_an_undefined_job_parameter_reference_is_reported():
    data = job(typed("a", "shell_command_task", {"command": "echo {{job.parameters.env}}"}))
    assert problems_of(data) == {
        "tasks[0].shell_command_task.command":
            "unknown reference {{job.parameters.env}}: there is no job parameter 'env'"}


def test_input_is_an_error_outside_a_for_each_but_not_inside_one():
    outside = typed("a", "shell_command_task", {"command": "echo {{input}}"})
    inside = for_each("each", typed("one", "shell_command_task", {"command": "echo {{input}}"}))
    assert problems_of(job(outside, inside)) == {
        "tasks[0].shell_command_task.command":
            "unknown reference {{input}}: input is only available inside a for-each task"}


def test_job_parameter_defaults_are_checked_for_references():
    data = job(notebook("a"), parameters=[{"name": "day", "default": "{{job.start_time.iso_date}}"},
                                          {"name": "bad", "default": "{{job.strat_time.iso_date}}"}])
    assert problems_of(data) == {
        "parameters[1].default": "unknown reference {{job.strat_time.iso_date}}: job has no field 'strat_time'"}


def test_references_in_foreign_namespaces_are_not_errors():
    data = job(typed("a", "shell_command_task", {"command": "echo {{secrets.scope.key}} {{foo}}"}))
    assert validate_job_settings(data)["tasks"][0]["shell_command_task"]["command"].startswith("echo {{")


# --- normalization ----------------------------------------------------------------


def test_defaults_are_filled_for_an_empty_job():
    assert validate_job_settings({}) == {
        "name": "Untitled", "max_concurrent_runs": 1, "timeout_seconds": 0,
        "format": "MULTI_TASK", "queue": {"enabled": True}, "tasks": []}


def test_api_2_1_jobs_do_not_queue_by_default():
    assert validate_job_settings({}, api_version="2.1")["queue"] == {"enabled": False}
    assert validate_job_settings({"queue": {"enabled": True}}, api_version="2.1")["queue"] == {"enabled": True}


def test_task_defaults_are_filled_and_given_values_kept():
    settings = validate_job_settings(job(notebook("a"), notebook("b", "a", run_if="ALL_DONE", max_retries=-1)))
    a, b = settings["tasks"]
    assert a == {**notebook("a"), "run_if": "ALL_SUCCESS", "timeout_seconds": 0, "max_retries": 0,
                 "min_retry_interval_millis": 0, "retry_on_timeout": False}
    assert (b["run_if"], b["max_retries"], b["depends_on"]) == ("ALL_DONE", -1, [{"task_key": "a"}])
    assert "disabled" not in a  # read back only on explicitly disabled tasks


def test_the_nested_for_each_task_gets_task_defaults_too():
    settings = validate_job_settings(job(for_each("each", notebook("one"))))
    assert settings["tasks"][0]["for_each_task"]["task"]["run_if"] == "ALL_SUCCESS"


def test_fields_owned_by_other_modules_pass_through_verbatim():
    extra = {
        "schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"},
        "email_notifications": {"on_failure": ["ops@example.com"]},
        "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"num_workers": 1}}],
        "duration_target": "4h",
    }
    settings = validate_job_settings(job(notebook("a", job_cluster_key="c", libraries=[{"pypi": {"package": "six"}}]), **extra))
    # Verbatim, except that a schedule reads back with its default pause_status, as on Databricks.
    extra["schedule"]["pause_status"] = "UNPAUSED"
    assert {key: settings[key] for key in extra} == extra
    assert settings["tasks"][0]["libraries"] == [{"pypi": {"package": "six"}}]


def test_the_input_is_not_mutated():
    data = job(notebook("a"), for_each("each", notebook("one")))
    before = copy.deepcopy(data)
    settings = validate_job_settings(data)
    assert data == before
    settings["tasks"][0]["notebook_task"]["notebook_path"] = "/changed"
    assert data["tasks"][0]["notebook_task"]["notebook_path"] == "/Jobs/a"


def test_a_submit_run_uses_run_name_and_no_job_only_defaults():
    settings = validate_job_settings({"tasks": [notebook("a")]}, for_submit=True)
    assert settings["run_name"] == "Untitled"
    assert "name" not in settings and "max_concurrent_runs" not in settings
    assert settings["tasks"][0]["run_if"] == "ALL_SUCCESS"


def test_a_submit_run_rejects_fields_only_a_saved_job_has():
    data = {"run_name": "once", "tasks": [notebook("a")], "schedule": {}, "max_concurrent_runs": 2}
    assert problems_of(data, for_submit=True) == {
        "schedule": "is not accepted by runs/submit (one-time runs)",
        "max_concurrent_runs": "is not accepted by runs/submit (one-time runs)",
    }


def test_a_submit_run_checks_tasks_with_the_same_rules():
    assert problems_of({"run_name": 5, "tasks": [notebook("a", "b"), notebook("b", "a")]}, for_submit=True) == {
        "run_name": "must be a string", "tasks": "dependency cycle a -> b -> a"}


# --- scale ------------------------------------------------------------------------


def test_a_thousand_task_chain_validates():
    tasks = [notebook("t0")] + [notebook(f"t{i}", f"t{i - 1}") for i in range(1, 1000)]
    settings = validate_job_settings(job(*tasks))
    assert len(settings["tasks"]) == 1000
    assert settings["tasks"][-1]["depends_on"] == [{"task_key": "t998"}]


def test_a_thousand_task_fan_out_validates():
    command = "echo {{tasks.root.values.batch}} {{job.start_time.iso_date}}"
    tasks = [notebook("root")] + [
        typed(f"leaf{i}", "shell_command_task", {"command": command}, depends_on=[{"task_key": "root"}])
        for i in range(999)]
    settings = validate_job_settings(job(*tasks))
    assert len(settings["tasks"]) == 1000


def test_null_fields_are_absent_ones_at_any_depth_as_in_the_apis_json_mapping():
    settings = validate_job_settings({
        "name": "nulls", "description": None, "tags": None, "queue": None, "performance_target": None,
        "tasks": [{"task_key": "a", "depends_on": None, "timeout_seconds": None,
                   "notebook_task": {"notebook_path": "/Workspace/x", "base_parameters": None}}],
    })
    assert "description" not in settings and "tags" not in settings
    assert settings["queue"] == {"enabled": True}  # the 2.2 default, as if it were left out
    assert settings["tasks"][0]["notebook_task"] == {"notebook_path": "/Workspace/x"}
    assert "depends_on" not in settings["tasks"][0]


def test_a_null_inside_a_list_is_still_refused():
    with pytest.raises(SettingsInvalid):
        validate_job_settings({"name": "x", "tasks": [None]})


def test_cost_optimized_is_a_performance_target():
    settings = validate_job_settings({"name": "x", "performance_target": "COST_OPTIMIZED", "tasks": []})
    assert settings["performance_target"] == "COST_OPTIMIZED"


@pytest.mark.parametrize("block, kind", [
    ({"warehouse_id": "w", "query": {"query_id": "q-1"}}, "sql_task.query.query_id"),
    ({"warehouse_id": "w", "alert": {"alert_id": "a-1", "subscriptions": [{"user_name": "ann"}]}}, "sql_task.alert"),
    ({"warehouse_id": "w", "dashboard": {"dashboard_id": "d-1"}}, "sql_task.dashboard"),
])
def test_saved_queries_alerts_and_dashboards_are_kept_and_marked_as_not_runnable_here(block, kind):
    settings = validate_job_settings(job(typed("q", "sql_task", block)))
    assert settings["tasks"][0]["sql_task"] == block
    assert unsupported_tasks(settings) == [("q", kind)]


def test_integers_may_come_as_decimal_strings_and_are_kept_as_numbers():
    settings = validate_job_settings({"name": "x", "timeout_seconds": "60", "max_concurrent_runs": "2",
                                      "tasks": [{"task_key": "a", "max_retries": "3",
                                                 "run_job_task": {"job_id": "12"}}]})
    assert (settings["timeout_seconds"], settings["max_concurrent_runs"]) == (60, 2)
    assert settings["tasks"][0]["max_retries"] == 3 and settings["tasks"][0]["run_job_task"]["job_id"] == 12


@pytest.mark.parametrize("value", ["6e1", "1.5", " 60", "sixty"])
def test_other_strings_are_not_integers(value):
    with pytest.raises(SettingsInvalid, match="timeout_seconds: must be an integer"):
        validate_job_settings({"name": "x", "timeout_seconds": value, "tasks": []})


@pytest.mark.parametrize("run_as, message", [
    ({}, "set exactly one of user_name, service_principal_name, group_name"),
    ({"user_name": "ann", "service_principal_name": "sp"},
     "set exactly one of user_name, service_principal_name, group_name (found user_name and service_principal_name)"),
])
def test_run_as_names_exactly_one_identity(run_as, message):
    assert problems_of(job(notebook("a"), run_as=run_as)) == {"run_as": message}


def test_an_environment_variable_value_may_be_512_characters_and_no_more():
    def variables(value):
        return {"environment_variables": [{"environment_variables_key": "k", "spec": {"variables": {"A": value}}}]}

    validate_job_settings(job(notebook("a"), **variables("x" * 512)))
    assert problems_of(job(notebook("a"), **variables("x" * 513))) == {
        "environment_variables[0].spec.variables.A": "a value may be at most 512 characters (the Databricks limit)"}


def test_env_files_are_workspace_or_volume_paths_and_at_most_five():
    def files(paths):
        return {"environment_variables": [{"environment_variables_key": "k", "spec": {"files": paths}}]}

    validate_job_settings(job(notebook("a"), **files(["/Workspace/team/.env", "/Volumes/c/s/v/prod.env"])))
    assert problems_of(job(notebook("a"), **files(["/tmp/.env"]))) == {
        "environment_variables[0].spec.files[0]": "must be a /Workspace/... or /Volumes/... path"}
    assert problems_of(job(notebook("a"), **files(["/Volumes/c/s/v/x.env"] * 6))) == {
        "environment_variables[0].spec.files": "at most 5 files"}
