"""Jobs API 2.0's single-task format to and from stored settings, without Django."""

import pytest

from jobs.spec.api_2_0 import (
    check_legacy_parameters,
    run_as_2_0,
    run_is_single_task,
    settings_as_2_0,
    settings_from_2_0,
    task_key_for,
    task_with_legacy_parameters,
    update_from_2_0,
)
from jobs.spec.checker import SettingsInvalid
from jobs.spec.settings import validate_job_settings
from jobs.spec.update import merge_update

NIGHTLY = {
    "name": "Nightly report",
    "notebook_task": {"notebook_path": "/Repos/etl/report", "base_parameters": {"day": "mon"}},
    "existing_cluster_id": "0923-164208-meows279",
    "libraries": [{"pypi": {"package": "pandas"}}],
    "max_retries": 2,
    "min_retry_interval_millis": 1000,
    "retry_on_timeout": True,
    "timeout_seconds": 3600,
    "max_concurrent_runs": 1,
    "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
}


def test_a_single_task_job_becomes_a_job_with_one_task_and_the_single_task_format():
    converted = settings_from_2_0(NIGHTLY)

    assert converted["format"] == "SINGLE_TASK"
    assert converted["tasks"] == [{
        "task_key": "Nightly_report",
        "notebook_task": NIGHTLY["notebook_task"],
        "existing_cluster_id": "0923-164208-meows279",
        "libraries": [{"pypi": {"package": "pandas"}}],
        "max_retries": 2,
        "min_retry_interval_millis": 1000,
        "retry_on_timeout": True,
    }]
    # The job's own fields stay where they were; the timeout is the job's and so the task's.
    assert {k: converted[k] for k in ("name", "timeout_seconds", "max_concurrent_runs", "schedule")} == {
        k: NIGHTLY[k] for k in ("name", "timeout_seconds", "max_concurrent_runs", "schedule")}
    assert "notebook_task" not in converted and "existing_cluster_id" not in converted


def test_the_converted_job_passes_the_job_settings_validation():
    settings = validate_job_settings(settings_from_2_0(NIGHTLY), api_version="2.0")

    assert settings["tasks"][0]["task_key"] == "Nightly_report"
    assert settings["queue"] == {"enabled": False}  # 2.0 does not queue by default


def test_a_job_written_in_the_single_task_format_reads_back_as_written():
    stored = validate_job_settings(settings_from_2_0(NIGHTLY), api_version="2.0")

    shown = settings_as_2_0(stored)

    assert "tasks" not in shown
    assert shown["format"] == "SINGLE_TASK"
    assert {k: shown[k] for k in NIGHTLY} == NIGHTLY
    assert "task_key" not in shown and "run_if" not in shown


def test_a_single_task_job_shown_in_2_0_converts_again_to_the_same_job():
    stored = validate_job_settings(settings_from_2_0(NIGHTLY), api_version="2.0")

    again = validate_job_settings(settings_from_2_0(settings_as_2_0(stored)), api_version="2.0")

    assert again == stored


def test_multi_task_settings_pass_both_ways_unchanged():
    settings = {"name": "etl", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]}

    assert settings_from_2_0(settings) == settings
    assert settings_as_2_0({**settings, "format": "MULTI_TASK"}) == {**settings, "format": "MULTI_TASK"}


def test_a_one_task_job_made_multi_task_stays_multi_task_in_2_0():
    stored = validate_job_settings({"name": "one", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]})

    assert settings_as_2_0(stored)["tasks"][0]["task_key"] == "a"


def test_a_one_time_run_in_the_single_task_format_takes_its_key_from_run_name_and_has_no_format():
    converted = settings_from_2_0({"run_name": "ad hoc!", "spark_python_task": {"python_file": "x.py"}},
                                  name_field="run_name")

    assert converted == {"run_name": "ad hoc!", "tasks": [{"task_key": "ad_hoc", "spark_python_task": {"python_file": "x.py"}}]}


@pytest.mark.parametrize("name, key", [
    ("Nightly report", "Nightly_report"), ("étl / daily", "tl_daily"), ("", "task"), (None, "task"),
    ("!!!", "task"), ("x" * 150, "x" * 100), ("keep-this_one", "keep-this_one"),
])
def test_the_task_key_is_the_name_with_what_a_key_cannot_hold_replaced(name, key):
    assert task_key_for(name) == key


@pytest.mark.parametrize("settings, field", [
    ({"name": "both", "notebook_task": {"notebook_path": "/a"}, "tasks": []}, "notebook_task"),
    ({"name": "typo", "notebok_task": {"notebook_path": "/a"}}, "notebok_task"),
    ({"name": "two", "notebook_task": {"notebook_path": "/a"}, "spark_python_task": {"python_file": "x.py"}},
     "spark_python_task"),
])
def test_a_body_that_is_neither_format_is_refused_naming_the_field(settings, field):
    with pytest.raises(SettingsInvalid) as refused:
        settings_from_2_0(settings)

    assert [p.path for p in refused.value.problems] == [field]


def updated_in_2_0(stored, new_settings, fields_to_remove=()):
    """The stored settings after a 2.0 jobs/update, as the 2.1 update applies it."""
    update, removals = update_from_2_0(stored, new_settings, list(fields_to_remove))
    return merge_update(stored, update, removals)


def test_a_2_0_update_of_a_single_task_job_changes_its_task_level_fields():
    stored = settings_from_2_0(NIGHTLY)

    updated = updated_in_2_0(stored, {"max_retries": 5, "retry_on_timeout": None, "max_concurrent_runs": 2,
                                      "new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": 1}})

    assert updated["max_concurrent_runs"] == 2 and "max_retries" not in updated
    [task] = updated["tasks"]
    assert task["max_retries"] == 5 and task["retry_on_timeout"] is True  # a null is an absent field
    assert task["new_cluster"]["num_workers"] == 1 and "existing_cluster_id" not in task
    assert task["notebook_task"] == NIGHTLY["notebook_task"] and task["task_key"] == "Nightly_report"
    validate_job_settings(updated)
    assert settings_as_2_0(updated)["max_retries"] == 5


def test_a_2_0_update_with_a_task_type_replaces_the_single_tasks_type():
    stored = settings_from_2_0(NIGHTLY)

    updated = updated_in_2_0(stored, {"spark_python_task": {"python_file": "/etl/run.py"}}, ["libraries"])

    [task] = updated["tasks"]
    assert task["spark_python_task"] == {"python_file": "/etl/run.py"} and "notebook_task" not in task
    assert "libraries" not in task and task["max_retries"] == 2
    validate_job_settings(updated)


def test_a_2_0_update_of_a_multi_task_job_passes_as_it_is():
    stored = {"name": "multi", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]}

    assert update_from_2_0(stored, {"max_retries": 2}, ["libraries"]) == ({"max_retries": 2}, ["libraries"])


@pytest.mark.parametrize("new_settings, field", [
    ({"max_retries": 1, "tasks": [{"task_key": "x"}]}, "max_retries"),
    ({"notebok_task": {"notebook_path": "/a"}}, "notebok_task"),
    ({"notebook_task": {"notebook_path": "/a"}, "spark_python_task": {"python_file": "x.py"}}, "spark_python_task"),
])
def test_a_bad_2_0_update_of_a_single_task_job_is_refused_naming_the_field(new_settings, field):
    with pytest.raises(SettingsInvalid) as refused:
        update_from_2_0(settings_from_2_0(NIGHTLY), new_settings, [])

    assert [p.path for p in refused.value.problems] == [field]


def run_with_one_task():
    return {"run_id": 7, "state": {"life_cycle_state": "TERMINATED"}, "setup_duration": 0, "execution_duration": 0,
            "tasks": [{"task_key": "t", "run_id": 8, "notebook_task": {"notebook_path": "/a"},
                       "new_cluster": {"num_workers": 1}, "setup_duration": 5, "execution_duration": 40,
                       "cleanup_duration": 0}]}


def test_a_single_task_run_shows_its_task_cluster_and_durations_at_the_top():
    shown = run_as_2_0(run_with_one_task(), single=True)

    assert shown["task"] == {"notebook_task": {"notebook_path": "/a"}}
    assert shown["cluster_spec"] == {"new_cluster": {"num_workers": 1}}
    assert (shown["setup_duration"], shown["execution_duration"]) == (5, 40)
    assert shown["tasks"][0]["run_id"] == 8


def test_a_multi_task_run_is_shown_as_it_is():
    assert run_as_2_0(run_with_one_task(), single=False) == run_with_one_task()


@pytest.mark.parametrize("settings, run_type, single", [
    ({"format": "SINGLE_TASK", "tasks": [{"task_key": "a"}]}, "JOB_RUN", True),
    ({"format": "MULTI_TASK", "tasks": [{"task_key": "a"}]}, "JOB_RUN", False),
    ({"tasks": [{"task_key": "a"}]}, "SUBMIT_RUN", True),
    ({"tasks": [{"task_key": "a"}, {"task_key": "b"}]}, "SUBMIT_RUN", False),
])
def test_which_runs_2_0_shows_in_the_single_task_shape(settings, run_type, single):
    assert run_is_single_task(settings, run_type) is single


def test_legacy_parameters_merge_into_notebook_parameters_and_replace_python_parameters():
    notebook = {"task_key": "n", "notebook_task": {"notebook_path": "/a", "base_parameters": {"day": "mon", "x": "1"}}}
    script = {"task_key": "p", "spark_python_task": {"python_file": "x.py", "parameters": ["old"]}}
    wheel = {"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "e"}}
    parameters = {"job_parameters": {"ignored": "here"}, "notebook_params": {"day": "tue"}, "python_params": ["new", "2"]}

    assert task_with_legacy_parameters(notebook, parameters)["notebook_task"]["base_parameters"] == {
        "day": "tue", "x": "1"}
    assert task_with_legacy_parameters(script, parameters)["spark_python_task"]["parameters"] == ["new", "2"]
    assert task_with_legacy_parameters(wheel, parameters)["python_wheel_task"]["parameters"] == ["new", "2"]
    assert script["spark_python_task"]["parameters"] == ["old"]  # a copy, not the stored settings


@pytest.mark.parametrize("body, field", [
    ({"python_params": "a b"}, "python_params"),
    ({"jar_params": [1]}, "jar_params"),
    ({"notebook_params": ["a"]}, "notebook_params"),
    ({"notebook_params": {"a": 1}}, "notebook_params"),
])
def test_legacy_parameters_of_the_wrong_type_are_refused_naming_the_field(body, field):
    with pytest.raises(SettingsInvalid) as refused:
        check_legacy_parameters(body)

    assert refused.value.problems[0].path == field


def test_only_the_legacy_parameters_given_are_kept():
    assert check_legacy_parameters({"job_id": 1, "python_params": ["a"], "notebook_params": None}) == {
        "python_params": ["a"]}
