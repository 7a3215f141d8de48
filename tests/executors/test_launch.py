"""prepare_attempt: what it checks before a process starts, and the command it builds."""

import json
import os
import sys

import pytest

from runs.executors.launch import RUNNER_BOOTSTRAP, RUNNER_PATH, LaunchError, prepare_attempt


def python_task(python_file, parameters=None):
    return {"task_key": "t", "spark_python_task": {"python_file": python_file,
                                                    "parameters": parameters or []}}


def prepare(task, tmp_path, **kwargs):
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace,
                           **kwargs)


def test_a_missing_python_file_is_resource_not_found_and_nothing_is_written(tmp_path):
    missing = tmp_path / "ws" / "nowhere" / "x.py"
    with pytest.raises(LaunchError) as caught:
        prepare(python_task(str(missing)), tmp_path)
    assert caught.value.code == "RESOURCE_NOT_FOUND"
    assert caught.value.message == f"python_file {missing} does not exist"
    assert not (tmp_path / "attempt").exists()


def test_a_directory_given_as_python_file_is_resource_not_found(tmp_path):
    (tmp_path / "ws" / "pkg").mkdir(parents=True)
    with pytest.raises(LaunchError) as caught:
        prepare(python_task("pkg"), tmp_path)
    assert caught.value.code == "RESOURCE_NOT_FOUND"
    assert "is not a file" in caught.value.message


def test_a_relative_python_file_resolves_under_the_workspace_root(tmp_path):
    (tmp_path / "ws" / "etl").mkdir(parents=True)
    script = tmp_path / "ws" / "etl" / "job.py"
    script.write_text("")
    spec = prepare(python_task("etl/job.py"), tmp_path)
    assert spec.argv == [sys.executable, "-c", RUNNER_BOOTSTRAP, RUNNER_PATH, spec.spec_path]
    assert spec.cwd == str(script.parent)
    assert json.loads(open(spec.spec_path).read())["python_file"] == str(script)


def test_a_file_uri_resolves_to_its_local_path(tmp_path):
    (tmp_path / "ws").mkdir()
    script = tmp_path / "ws" / "my job.py"
    script.write_text("")
    spec = prepare(python_task("file://" + str(script).replace(" ", "%20")), tmp_path)
    assert json.loads(open(spec.spec_path).read())["argv"][0] == str(script)


def test_a_remote_uri_is_an_invalid_configuration(tmp_path):
    with pytest.raises(LaunchError) as caught:
        prepare(python_task("s3://bucket/jobs/x.py"), tmp_path)
    assert caught.value.code == "INVALID_RUN_CONFIGURATION"
    assert "s3: URIs are not supported" in caught.value.message


def test_an_unsupported_task_type_is_an_invalid_configuration(tmp_path):
    with pytest.raises(LaunchError) as caught:
        prepare({"task_key": "t", "spark_jar_task": {"main_class_name": "Main"}}, tmp_path)
    assert caught.value.code == "INVALID_RUN_CONFIGURATION"
    assert caught.value.message == "spark_jar_task tasks are not supported by this executor yet"


def test_a_task_with_two_types_is_an_invalid_configuration(tmp_path):
    task = {"shell_command_task": {"command": "true"}, "notebook_task": {"notebook_path": "/n"}}
    with pytest.raises(LaunchError) as caught:
        prepare(task, tmp_path)
    assert "shell_command_task, notebook_task" in caught.value.message


def test_numeric_parameters_become_strings_and_other_values_are_rejected(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x.py").write_text("")
    spec = prepare(python_task("x.py", ["a", 1, 2.5]), tmp_path)
    assert json.loads(open(spec.spec_path).read())["argv"][1:] == ["a", "1", "2.5"]
    with pytest.raises(LaunchError) as caught:
        prepare(python_task("x.py", ["a", None]), tmp_path)
    assert caught.value.message == "spark_python_task.parameters[1] must be a string, not NoneType"


def test_the_spec_carries_widgets_upstream_values_and_result_paths(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x.py").write_text("")
    spec = prepare(python_task("x.py"), tmp_path, widgets={"w": "1"},
                   upstream_values={"up": {"k": [1]}})
    written = json.loads(open(spec.spec_path).read())
    assert written["widgets"] == {"w": "1"}
    assert written["upstream_values"] == {"up": {"k": [1]}}
    assert written["task_key"] == "t"
    assert written["result_path"] == spec.result_path == str(tmp_path / "attempt" / "result.json")


def test_a_reused_attempt_dir_loses_the_previous_result_and_values(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x.py").write_text("")
    attempt = tmp_path / "attempt"
    attempt.mkdir()
    (attempt / "result.json").write_text('{"exit_code": 0}')
    (attempt / "values.json").write_text('{"k": 1}')
    spec = prepare(python_task("x.py"), tmp_path)
    assert not os.path.exists(spec.result_path)
    assert not os.path.exists(spec.values_path)


def test_the_environment_is_an_allow_list_plus_what_was_declared_and_unbuffers_python(tmp_path, monkeypatch):
    monkeypatch.setenv("FROM_WORKER", "yes")
    monkeypatch.setenv("NOT_FOR_TASKS", "secret")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "x.py").write_text("")
    spec = prepare(python_task("x.py"), tmp_path, env={"EXTRA": "1", "PYTHONUNBUFFERED": "0"},
                   server_variables=("FROM_WORKER",))
    assert spec.env["FROM_WORKER"] == "yes"
    assert spec.env["PATH"] == "/usr/bin:/bin"
    assert "NOT_FOR_TASKS" not in spec.env
    assert spec.env["EXTRA"] == "1"
    assert spec.env["PYTHONUNBUFFERED"] == "1"
    assert spec.env["LAKEFLOW_TASK_VALUES_PATH"] == spec.values_path
    assert spec.env["LAKEFLOW_TASK_KEY"] == "t"


def test_a_shell_command_gets_its_parameters_as_positional_arguments(tmp_path):
    task = {"shell_command_task": {"command": 'echo "$1"', "parameters": ["a b", "$(x)"]}}
    spec = prepare(task, tmp_path)
    assert spec.argv == ["bash", "-c", 'echo "$1"', "lakeflow-task", "a b", "$(x)"]
    assert spec.cwd == str(tmp_path / "ws")
    assert spec.spec_path is None


def test_a_shell_command_without_a_workspace_root_is_resource_not_found(tmp_path):
    task = {"shell_command_task": {"command": "true"}}
    with pytest.raises(LaunchError) as caught:
        prepare_attempt(task, attempt_dir=tmp_path / "a", workspace_root=tmp_path / "missing")
    assert caught.value.code == "RESOURCE_NOT_FOUND"


def test_a_wheel_task_needs_a_package_name_and_an_entry_point(tmp_path):
    with pytest.raises(LaunchError) as caught:
        prepare({"python_wheel_task": {"package_name": "pkg"}}, tmp_path)
    assert caught.value.code == "INVALID_RUN_CONFIGURATION"
    assert caught.value.message == "python_wheel_task.entry_point is required"
