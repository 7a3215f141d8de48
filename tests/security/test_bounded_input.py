"""Bad input is refused with a clear error at every way in, never a 500, a slow parse, or a value
that breaks a page later: YAML aliases, size and depth, surrogates and NUL characters, integers
past int64 in query strings and paths, command lines past the operating system's limits."""

import json

import pytest
from django.core.exceptions import ValidationError

from jobs.models import Job, JobVersion
from jobs.settings_text import settings_from_text
from jobs.spec.documents import MAX_DOCUMENT_BYTES
from runs.admission import create_run
from runs.engine.states import RunResultState as R
from runs.models import Run, TaskRun
from tests.api.conftest import create_job, shell_task
from tests.dashboard.conftest import make_job

ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(7)]
    + ["name: bomb", "tasks: [{task_key: t, shell_command_task: {command: 'true'}}]"])


def saved_versions():
    return JobVersion.objects.count()


def post_source(browser, job, source, fmt="yaml"):
    url = f"/jobs/{job.id}/source/" if job else "/jobs/new/source/"
    return browser.post(url, {"format": fmt, "source": source})


# --- item 4: YAML aliases, size, unknown fields --------------------------------------------


def test_the_editor_refuses_yaml_aliases_before_expanding_them(browser):
    response = post_source(browser, None, ALIAS_BOMB)
    assert response.status_code == 200
    assert "aliases (*name) are not accepted" in response.content.decode()
    assert saved_versions() == 0


def test_the_editor_applies_the_apis_size_limit_to_the_source():
    with pytest.raises(ValidationError, match="larger than the limit of 10,485,760 bytes"):
        settings_from_text("#" * (MAX_DOCUMENT_BYTES + 1))


@pytest.mark.parametrize("way", ["api", "editor"])
def test_an_unknown_top_level_field_is_refused_by_name_in_the_api_and_the_editor(api, browser, way):
    body = {"name": "j", "max_concurent_runs": 3, "tasks": [shell_task("t")]}
    if way == "api":
        response = api.post("jobs/create", body)
        assert response.status_code == 400
        message = response.json()["message"]
    else:
        message = post_source(browser, None, json.dumps(body), "json").content.decode()
    assert "max_concurent_runs: is not a field of JobSettings; did you mean max_concurrent_runs?" in message
    assert not Job.objects.exists()


# --- item 6: lone surrogates -------------------------------------------------------------


@pytest.mark.parametrize("field", [{"tags": {"team": "\udfff"}}, {"description": "a\udfffb"}, {"name": "\ud83d"}])
def test_the_api_refuses_a_lone_surrogate_where_it_refuses_nul(api, field):
    response = api.post("jobs/create", {"name": "j", "tasks": [shell_task("t")], **field})
    assert response.status_code == 400
    assert "lone UTF-16 surrogate" in response.json()["message"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("value", ['"\\udfff"', '"a\\u0000b"'])
def test_the_editor_refuses_surrogates_and_nul_like_the_api(browser, value):
    source = '{"name": %s, "tasks": [{"task_key": "t", "shell_command_task": {"command": "true"}}]}' % value
    response = post_source(browser, None, source, "json")
    assert response.status_code == 200
    assert "surrogate" in response.content.decode() or "NUL" in response.content.decode()
    assert saved_versions() == 0


def test_run_now_from_the_dashboard_refuses_a_surrogate_parameter(browser, user):
    job = make_job(user, parameters=[{"name": "p", "default": "x"}])
    response = browser.post(f"/jobs/{job.id}/run-now/", {"parameters_json": '{"p": "\\ud83d"}'}, follow=True)
    assert "surrogate" in response.content.decode()
    assert not Run.objects.exists()


def test_pages_render_a_surrogate_stored_before_it_was_refused(browser, user, held_broker):
    job = make_job(user, parameters=[{"name": "p", "default": "x"}])
    # As an older server stored them: JSON escapes that decode to lone surrogates.
    JobVersion.objects.filter(job=job).update(settings={**job.settings, "description": "\udfff",
                                                         "tags": {"team": "\udfff"}})
    run, _ = create_run(Job.objects.get(id=job.id))
    Run.objects.filter(id=run.id).update(job_parameters=[{"name": "p", "default": "\ud83d", "value": "\ud83d"}])
    Job.objects.filter(id=job.id).update(deleted_at="2026-01-01T00:00:00Z")
    for url in ("/", f"/jobs/{job.id}/runs/{run.id}/", "/runs/"):
        response = browser.get(url)
        assert response.status_code == 200, url
    assert "\ufffd" in browser.get(f"/jobs/{job.id}/runs/{run.id}/").content.decode()


# --- item 9: one bounded reader for every parameter ------------------------------------


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_json_nested_100000_deep_is_a_400(api, body):
    response = api.post("jobs/create", raw=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_REQUEST"


def test_a_task_field_nested_900_deep_is_a_400_naming_the_field(api):
    deep = "x"
    for _ in range(900):
        deep = [deep]
    response = api.post("jobs/create", {"name": "j", "tasks": [{**shell_task("t"), "libraries": [{"x": deep}]}]})
    assert response.status_code == 400
    assert "nested more than 64 levels deep" in response.json()["message"]


def test_an_id_of_5000_digits_is_a_400(api):
    response = api.get("jobs/get", job_id="9" * 5000)
    assert response.status_code == 400
    assert response.json()["message"].startswith("job_id: must be between 1 and")
    assert len(response.json()["message"]) < 200


@pytest.mark.parametrize("fmt, source", [("yaml", "a: " + "[" * 5000 + "]" * 5000),
                                         ("json", '{"a": ' + "[" * 5000 + "]" * 5000 + "}"),
                                         ("yaml", "a: " + "[" * 900 + "]" * 900)])
def test_the_editor_answers_deep_nesting_with_a_problem_not_a_500(browser, fmt, source):
    response = post_source(browser, None, source, fmt)
    assert response.status_code == 200
    assert "nested more than" in response.content.decode()


@pytest.fixture
def job_and_run(user, held_broker):
    job = make_job(user)
    run, _ = create_run(job)
    return job, run


@pytest.mark.parametrize("path", [
    "/runs/?before=²", "/jobs/{job}/versions/?new=²", "/jobs/{job}/versions/?new=" + "9" * 25,
    "/jobs/{job}/versions/?old=-1", "/jobs/{job}/source/?version=²", "/jobs/{job}/?before=" + "1" * 25,
    "/jobs/{job}/runs/{run}/?task=²", "/task-runs/{task}/log/?offset=" + "9" * 25,
])
def test_query_parameters_out_of_range_are_400s(browser, job_and_run, path):
    job, run = job_and_run
    task = TaskRun.objects.filter(run=run).first()
    assert browser.get(path.format(job=job.id, run=run.id, task=task.id)).status_code == 400


@pytest.mark.parametrize("path", ["/jobs/{big}/", "/runs/{big}/", "/task-runs/{big}/log/", "/jobs/{big}/versions/"])
def test_ids_past_int64_in_paths_are_404s(browser, path):
    assert browser.get(path.format(big="9" * 25)).status_code == 404


def test_a_log_offset_past_the_end_reads_nothing_and_answers_the_end(browser, job_and_run, tmp_path):
    _, run = job_and_run
    task = TaskRun.objects.filter(run=run).first()
    (tmp_path / "output.log").write_text("four")
    TaskRun.objects.filter(id=task.id).update(log_path=str(tmp_path / "output.log"))
    answer = browser.get(f"/task-runs/{task.id}/log/?offset={2**63 - 1}").json()
    assert (answer["text"], answer["offset"]) == ("", 4)
    assert browser.get(f"/task-runs/{task.id}/log/?offset=1").json()["text"] == "our"


def test_yaml_keys_that_are_not_text_are_a_problem_not_a_500(browser):
    response = post_source(browser, None, "name: j\n1: x\ntasks: []\n")
    assert response.status_code == 200
    assert "1: is not a field of JobSettings" in response.content.decode()


@pytest.mark.parametrize("content", ["not json at all", '{"cells": "no"}', None])
def test_export_and_output_of_a_notebook_its_task_rewrote_answer_without_a_500(api, browser, user, job_and_run,
                                                                             tmp_path, content):
    _, run = job_and_run
    task = TaskRun.objects.filter(run=run).first()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    notebook = tmp_path / "executed.ipynb"
    if content is None:
        notebook.symlink_to(secret)  # a task may plant a link to a file only the server can read
    else:
        notebook.write_text(content)
    TaskRun.objects.filter(id=task.id).update(executed_notebook=str(notebook))
    output = browser.get(f"/task-runs/{task.id}/output/")
    assert output.status_code == 404 and "TOP SECRET" not in output.content.decode()
    from jobs.models import ApiToken

    exported = browser.get(f"/api/2.2/jobs/runs/export?run_id={task.id}",
                           headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"})
    assert exported.status_code == 200
    [view] = exported.json()["views"]
    assert "not a notebook" in view["content"] or "cannot be read" in view["content"]
    assert "TOP SECRET" not in view["content"]


# --- item 10: NUL in the editor, command lines past the OS limits ---------------------


def test_a_command_over_128_kib_is_refused_at_save_with_the_limit(api):
    response = api.post("jobs/create", {"name": "j", "tasks": [shell_task("t", "echo " + "x" * 140_000)]})
    assert response.status_code == 400
    assert "tasks[0].shell_command_task.command: is 140,005 bytes; a task's command or parameter may be at most 131,071" \
        in response.json()["message"]


def test_parameters_adding_up_past_the_command_line_limit_are_refused(api):
    task = {"task_key": "t", "shell_command_task": {"command": "true", "parameters": ["y" * 100_000] * 12}}
    response = api.post("jobs/create", {"name": "j", "tasks": [task]})
    assert response.status_code == 400
    assert "the command line adds up to 1,200,004 bytes; at most 1,048,576" in response.json()["message"]


def test_a_parameter_that_a_reference_makes_too_long_fails_its_task_clearly(api, transactional_db):
    job_id = create_job(api, parameters=[{"name": "p", "default": "x"}],
                        tasks=[{"task_key": "t", "shell_command_task": {
                            "command": "echo \"$1\"", "parameters": ["{{job.parameters.p}}"]}}])
    run_id = api.post_ok("jobs/run-now", {"job_id": job_id, "job_parameters": {"p": "z" * 200_000}})["run_id"]
    attempt = TaskRun.objects.get(run_id=run_id)
    assert (attempt.result_state, attempt.termination_code) == (R.FAILED, "INVALID_RUN_CONFIGURATION")
    assert "shell_command_task.parameters[0] is 200,000 bytes" in attempt.state_message
