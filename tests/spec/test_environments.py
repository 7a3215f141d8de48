"""Environments and libraries: what Databricks accepts is saved; what a task installs is one
normalized list of requirement lines with a stable key."""

import pytest

from jobs.spec.environments import Line, classify, environment_key_of, environment_spec
from jobs.spec.settings import SettingsInvalid, validate_job_settings


def job(tasks, **fields):
    return {"name": "j", "tasks": tasks, **fields}


def script(key="t", **fields):
    return {"task_key": key, "spark_python_task": {"python_file": "main.py"}, **fields}


def problems(settings):
    with pytest.raises(SettingsInvalid) as caught:
        validate_job_settings(settings)
    return {(p.path, p.message) for p in caught.value.problems}


ENVIRONMENTS = [{"environment_key": "default",
                 "spec": {"environment_version": "4", "client": "1", "dependencies": ["six==1.16.0", "-r req.txt"]}}]


def test_a_databricks_job_with_environments_and_libraries_is_saved_unchanged():
    settings = job([script("a", environment_key="default"),
                    script("b", libraries=[{"pypi": {"package": "tomli==2.0.1", "repo": "https://pypi.org/simple"}},
                                           {"whl": "/Volumes/main/default/libs/x-1.0-py3-none-any.whl"},
                                           {"requirements": "/Workspace/reqs.txt"},
                                           {"jar": "/Volumes/main/default/libs/x.jar"},
                                           {"maven": {"coordinates": "org.x:y:1.0"}}])],
                   environments=ENVIRONMENTS)
    saved = validate_job_settings(settings)
    assert saved["environments"] == ENVIRONMENTS
    assert saved["tasks"][1]["libraries"] == settings["tasks"][1]["libraries"]


def test_an_environment_key_that_names_no_environment_is_refused_with_its_path():
    assert ("tasks[0].environment_key", "there is no environment 'gpu' in this job's environments") in problems(
        job([script(environment_key="gpu")], environments=ENVIRONMENTS))


def test_duplicate_environment_keys_and_non_string_dependencies_are_refused():
    found = problems(job([script()], environments=[
        {"environment_key": "e", "spec": {"dependencies": ["six", 3]}},
        {"environment_key": "e", "spec": {"client": "1"}}]))
    assert ("environments[0].spec.dependencies[1]", "must be a string") in found
    assert ("environments[1].environment_key", "duplicate key 'e'") in found


def test_a_library_of_no_known_kind_or_a_pypi_library_without_a_package_is_refused():
    found = problems(job([script(libraries=[{"python": "six"}, {"pypi": {"repo": "https://x"}}])]))
    assert ("tasks[0].libraries[0]", "a library needs one of pypi, whl, requirements, jar, maven, cran, egg") in found
    assert ("tasks[0].libraries[1].pypi.package", "is required") in found


def test_a_task_with_an_environment_key_installs_the_environments_dependencies_and_records_its_version():
    spec = environment_spec({"environments": ENVIRONMENTS}, script(environment_key="default"), "spark_python_task")
    assert spec.lines == (Line("requirement", "six==1.16.0"), Line("requirements", "req.txt"))
    assert spec.recorded == {"environment_version": "4", "client": "1"}
    assert spec.source == "environments[default]"


def test_libraries_become_requirement_lines_and_non_python_ones_are_skipped_with_why():
    task = script(libraries=[{"pypi": {"package": "tomli==2.0.1", "repo": "https://mirror/simple"}},
                             {"whl": "dist/x-1.0-py3-none-any.whl"}, {"requirements": "r.txt"},
                             {"jar": "x.jar"}])
    spec = environment_spec({}, task, "spark_python_task")
    assert spec.lines == (Line("requirement", "--extra-index-url https://mirror/simple"),
                          Line("requirement", "tomli==2.0.1"), Line("path", "dist/x-1.0-py3-none-any.whl"),
                          Line("requirements", "r.txt"))
    assert spec.skipped == ('jar library "x.jar": only Python libraries are installed by this server',)


def test_tasks_without_environment_or_libraries_and_sql_tasks_get_none():
    assert environment_spec({"environments": ENVIRONMENTS}, script(), "spark_python_task") is None
    sql = {"task_key": "q", "sql_task": {"warehouse_id": "default"}, "environment_key": "default"}
    assert environment_spec({"environments": ENVIRONMENTS}, sql, "sql_task") is None


def test_blank_lines_comments_and_repeats_are_dropped_and_whitespace_does_not_change_the_key():
    one = environment_spec({"environments": [{"environment_key": "e", "spec": {
        "dependencies": [" six==1.16.0 ", "", "# pinned", "six==1.16.0", "tomli"]}}]},
        script(environment_key="e"), "notebook_task")
    assert [line.value for line in one.lines] == ["six==1.16.0", "tomli"]


@pytest.mark.parametrize("line,kind", [
    ("six==1.16.0", "requirement"), ("requests[socks]>=2", "requirement"),
    ("pkg @ https://host/pkg-1.0.tar.gz", "requirement"), ("git+https://github.com/x/y", "requirement"),
    ("--index-url https://mirror/simple", "requirement"), ("six; python_version > '3'", "requirement"),
    ("/Volumes/c/s/v/x-1.0-py3-none-any.whl", "path"), ("../dist/x-1.0-py3-none-any.whl", "path"),
    ("dist/x-1.0.tar.gz", "path"), ("./my_project", "path"), ("file:///tmp/x.whl", "path"),
    ("-r requirements.txt", "requirements"), ("--requirement=/Workspace/r.txt", "requirements"),
])
def test_each_dependency_line_is_read_as_pip_reads_a_requirements_file_line(line, kind):
    assert classify(line).kind == kind


def test_the_key_depends_on_lines_their_order_the_interpreter_and_local_file_content():
    base = environment_key_of(["six", "tomli"], "/usr/bin/python3", {"/w/x.whl": "aa"})
    assert base == environment_key_of(["six", "tomli"], "/usr/bin/python3", {"/w/x.whl": "aa"})
    assert len({base,
                environment_key_of(["tomli", "six"], "/usr/bin/python3", {"/w/x.whl": "aa"}),
                environment_key_of(["six", "tomli"], "/opt/python", {"/w/x.whl": "aa"}),
                environment_key_of(["six", "tomli"], "/usr/bin/python3", {"/w/x.whl": "bb"})}) == 4


def test_a_dependency_or_library_with_a_line_break_is_refused_at_save():
    found = problems(job([script("a", environment_key="default", libraries=[
        {"whl": "/Volumes/c/s/v/x.whl\n-e /elsewhere"}, {"pypi": {"package": "six\r\n--find-links /x"}}])],
        environments=[{"environment_key": "default", "spec": {"dependencies": ["six==1.16.0", "tomli\n-r /x"]}}]))
    assert found == {
        ("environments[0].spec.dependencies[1]", "must be one requirement line: no line breaks"),
        ("tasks[0].libraries[0].whl", "must be one requirement line: no line breaks"),
        ("tasks[0].libraries[1].pypi.package", "must be one requirement line: no line breaks"),
    }
