"""The job authoring pages: the form editor, the YAML/JSON editor and the version history."""

import re

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from jobs.form_problems import place_problems
from jobs.forms import TASK_TYPE_LABELS, JobForm, TaskForm
from jobs.models import Job, JobVersion
from jobs.spec.settings import EXECUTABLE_TASK_TYPES, Problem, validate_job_settings
from tests.dashboard.conftest import make_job

BLANK_TASK = {"task_key": "", "task_type": "shell_command_task", "run_if": "ALL_SUCCESS", "max_retries": "0",
              "min_retry_interval_millis": "0", "timeout_seconds": "0", "original": ""}


def job_post(tasks, **job):
    """The POST a browser sends from the job form: job fields, then one prefixed set per task."""
    data = {"name": "etl", "trigger_kind": "", "max_concurrent_runs": "1", "timeout_seconds": "0",
            "queue_enabled": "on", "tasks-TOTAL_FORMS": str(len(tasks)), "tasks-INITIAL_FORMS": "0", **job}
    for i, task in enumerate(tasks):
        data.update({f"tasks-{i}-{name}": value for name, value in {**BLANK_TASK, **task}.items()})
    return data


def form_values(html, form_id="job-form"):
    """What a browser submits from the form as rendered: each named control's current value."""
    values = {}
    form = BeautifulSoup(html, "html.parser").find("form", id=form_id)
    for control in form.find_all(["input", "textarea", "select"]):
        name, kind = control.get("name"), control.get("type")
        if not name or kind in ("submit", "button"):
            continue
        if control.name == "textarea":
            values[name] = control.text.removeprefix("\n")  # browsers drop the newline Django writes first
        elif control.name == "select":
            option = control.find("option", selected=True) or control.find("option")
            values[name] = option.get("value", option.text)
        elif kind in ("checkbox", "radio"):
            if control.has_attr("checked"):
                values[name] = control.get("value", "on")
        else:
            values[name] = control.get("value", "")
    return values


def field_text(response, field_id):
    return BeautifulSoup(response.content, "html.parser").find(id=f"div_id_{field_id}").get_text(" ", strip=True)


def page_text(response):
    return BeautifulSoup(response.content, "html.parser").get_text(" ", strip=True)


# --- the form editor --------------------------------------------------------------------


def test_the_new_job_page_offers_one_blank_task(browser):
    response = browser.get(reverse("jobs:new"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="add-task"' in html and ">Add task<" in html and ">Save job<" in html
    assert 'name="tasks-0-task_key"' in html and 'name="tasks-__prefix__-task_key"' in html
    assert "csrfmiddlewaretoken" in html
    assert form_values(html)["tasks-TOTAL_FORMS"] == "1"


def test_creating_a_two_task_job_through_the_form_saves_version_1(browser, user):
    response = browser.post(reverse("jobs:new"), job_post(
        [{"task_key": "extract", "task_type": "spark_python_task", "python_file": "/jobs/extract.py",
          "python_parameters": "--date\n{{job.parameters.date}}"},
         {"task_key": "load", "task_type": "shell_command_task", "shell_command": "echo loaded",
          "depends_on": "extract", "max_retries": "2", "retry_on_timeout": "on"}],
        tags="team=data", parameters="date=2026-01-01"))

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[job.id])
    assert job.current_version.number == 1 and job.current_version.created_by == user and job.creator == user
    assert job.settings == validate_job_settings({
        "name": "etl", "tags": {"team": "data"}, "parameters": [{"name": "date", "default": "2026-01-01"}],
        "max_concurrent_runs": 1, "timeout_seconds": 0, "queue": {"enabled": True},
        "tasks": [
            {"task_key": "extract", "spark_python_task": {"python_file": "/jobs/extract.py",
                                                         "parameters": ["--date", "{{job.parameters.date}}"]}},
            {"task_key": "load", "depends_on": [{"task_key": "extract"}], "max_retries": 2, "retry_on_timeout": True,
             "shell_command_task": {"command": "echo loaded"}},
        ]})


def test_editing_through_the_form_makes_version_2_and_keeps_version_1(browser, user):
    job = make_job(user)
    values = form_values(browser.get(reverse("jobs:edit", args=[job.id])).content.decode())
    values.update({"name": "nightly-v2", "tasks-0-shell_command": "echo bye"})

    response = browser.post(reverse("jobs:edit", args=[job.id]), values)

    job.refresh_from_db()
    assert response.status_code == 302
    assert [v.number for v in job.versions.all()] == [1, 2] and job.current_version.number == 2
    assert job.name == "nightly-v2" and job.settings["tasks"][0]["shell_command_task"] == {"command": "echo bye"}
    assert job.versions.get(number=1).settings["tasks"][0]["shell_command_task"] == {"command": "echo hi"}


def full_job(user, **settings):
    """A job made through the API's validation with every kind of task and fields the form does not show."""
    target = make_job(user, name="child")
    return make_job(user, **{
        "name": "everything", "description": "All task types", "tags": {"team": "data", "empty": ""},
        "parameters": [{"name": "date", "default": ""}, {"name": "region", "default": "eu"}],
        "max_concurrent_runs": 3, "timeout_seconds": 600, "queue": {"enabled": False},
        "email_notifications": {"on_failure": ["ops@example.com"]},  # not on the form: kept as it is
        "tasks": [
            {"task_key": "nb",
             "notebook_task": {"notebook_path": "/nb", "base_parameters": {"a": "1"}, "source": "WORKSPACE"},
             "libraries": [{"pypi": {"package": "requests"}}], "description": "a notebook"},
            {"task_key": "py", "spark_python_task": {"python_file": "x.py", "parameters": ["", " padded "]},
             "depends_on": [{"task_key": "nb"}], "run_if": "ALL_DONE", "timeout_seconds": 30},
            {"task_key": "wheel", "python_wheel_task": {"package_name": "pkg", "entry_point": "main",
                                                        "named_parameters": {"x": "1"}}},
            {"task_key": "q", "sql_task": {"warehouse_id": "default", "query": {"query_text": "select 1;\nselect 2"},
                                           "parameters": {"p": "v"}}},
            {"task_key": "f", "sql_task": {"warehouse_id": "default", "file": {"path": "/q.sql", "source": "WORKSPACE"}}},
            {"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "{{job.parameters.region}}", "right": ""}},
            {"task_key": "yes", "depends_on": [{"task_key": "check", "outcome": "true"}],
             "shell_command_task": {"command": "echo 'multi\nline'", "parameters": ["a=b"]}, "max_retries": -1,
             "min_retry_interval_millis": 1000, "retry_on_timeout": True, "disabled": False},
            {"task_key": "each", "for_each_task": {
                "inputs": '["a","b"]', "concurrency": 2,
                "task": {"task_key": "one", "shell_command_task": {"command": "echo {{input}}"}}}},
            {"task_key": "child", "run_job_task": {"job_id": target.id, "job_parameters": {"k": "v"}}},
        ], **settings})


@pytest.mark.parametrize("trigger", [
    {},
    {"schedule": {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "Europe/Berlin", "pause_status": "PAUSED"}},
    {"trigger": {"periodic": {"interval": 4, "unit": "HOURS"}}},
    {"trigger": {"table_update": {"table_names": ["a.b.c", "a.b.d"], "condition": "ALL_UPDATED",
                                  "wait_after_last_change_seconds": 120}, "pause_status": "UNPAUSED"}},
    {"trigger": {"table_update": {"table_names": ["a.b.c"]}}},
    {"continuous": {"pause_status": "UNPAUSED", "task_retry_mode": "ON_FAILURE"}},
    "file_arrival",
    "job_completion",
], ids=["manual", "schedule", "periodic", "table-all", "table-any", "continuous", "file-arrival", "job-completion"])
def test_a_job_made_through_the_api_saves_unchanged_through_the_form(browser, user, tmp_path, trigger):
    if trigger == "file_arrival":
        trigger = {"trigger": {"file_arrival": {"url": str(tmp_path), "min_time_between_triggers_seconds": 60}}}
    if trigger == "job_completion":
        upstream = [make_job(user, name=f"upstream {n}").id for n in (1, 2)]
        trigger = {"trigger": {"job_completion": {
            "jobs": [{"job_id": str(upstream[0]), "workspace_id": "7"}, {"job_id": str(upstream[1]), "workspace_id": "1"}],
            "if_status": "DONE"}, "pause_status": "PAUSED"}}
    job = full_job(user, **trigger)
    url = reverse("jobs:edit", args=[job.id])

    response = browser.post(url, form_values(browser.get(url).content.decode()))

    assert response.status_code == 302, page_text(response)
    job.refresh_from_db()
    assert job.current_version.number == 2
    assert job.settings == job.versions.get(number=1).settings


def test_a_job_completion_trigger_is_written_from_the_form(browser, user):
    upstream = make_job(user, name="upstream")

    response = browser.post(reverse("jobs:new"), job_post(
        [{"task_key": "run", "shell_command": "true"}], name="downstream", trigger_kind="job_completion",
        upstream_job_ids=f"{upstream.id}\n", completion_status="SUCCESS"))

    assert response.status_code == 302, page_text(response)
    job = Job.objects.get(name="downstream")
    assert job.settings["trigger"] == {"job_completion": {"jobs": [{"job_id": str(upstream.id), "workspace_id": "0"}]},
                                       "pause_status": "UNPAUSED"}


def test_a_job_completion_trigger_on_a_job_that_does_not_exist_is_shown_on_its_field(browser):
    response = browser.post(reverse("jobs:new"), job_post(
        [{"task_key": "run", "shell_command": "true"}], name="downstream", trigger_kind="job_completion",
        upstream_job_ids="987654", completion_status="SUCCESS"))

    assert response.status_code == 200 and not Job.objects.filter(name="downstream").exists()
    assert "987654" in page_text(response)


def test_reordering_and_removing_tasks_follows_the_posted_order(browser, user):
    job = make_job(user, tasks=[{"task_key": k, "shell_command_task": {"command": f"echo {k}"}} for k in "abc"])
    values = form_values(browser.get(reverse("jobs:edit", args=[job.id])).content.decode())

    # What job_form.js leaves after "Remove" on b and "Move up" twice on c: c, then a, renumbered.
    def card(index, to):
        return {key.replace(f"tasks-{index}-", f"tasks-{to}-"): value
                for key, value in values.items() if key.startswith(f"tasks-{index}-")}
    c_first = {**{key: value for key, value in values.items() if not re.match(r"tasks-\d", key)},
               **card(2, 0), **card(0, 1), "tasks-TOTAL_FORMS": "2"}

    response = browser.post(reverse("jobs:edit", args=[job.id]), c_first)

    assert response.status_code == 302, page_text(response)
    job.refresh_from_db()
    assert [t["task_key"] for t in job.settings["tasks"]] == ["c", "a"]


def test_a_cycle_is_shown_next_to_depends_on_with_its_path_and_what_was_typed_is_kept(browser):
    response = browser.post(reverse("jobs:new"), job_post([
        {"task_key": "a", "shell_command": "echo 'typed a'", "depends_on": "b"},
        {"task_key": "b", "shell_command": "echo typed b", "depends_on": "a"},
    ], name="loop"))

    assert response.status_code == 200 and not Job.objects.exists()
    for i in (0, 1):
        assert "dependency cycle a -> b -> a" in field_text(response, f"tasks-{i}-depends_on")
    values = form_values(response.content.decode())
    assert values["name"] == "loop"
    assert values["tasks-0-depends_on"] == "b" and values["tasks-1-depends_on"] == "a"
    assert values["tasks-0-shell_command"] == "echo 'typed a'"
    assert "The job was not saved" in page_text(response) and "2 problems marked below" in page_text(response)


def test_problems_from_the_validator_land_on_their_fields(browser):
    response = browser.post(reverse("jobs:new"), job_post([
        {"task_key": "run", "shell_command": "true"},
        {"task_key": "bad key!", "task_type": "sql_task", "sql_warehouse_id": "nowhere", "sql_kind": "query",
         "depends_on": "run:true"},
    ], trigger_kind="schedule", cron_expression="not a cron", timezone_id="Mars/Olympus"))

    assert response.status_code == 200 and not Job.objects.exists()
    assert "Mars/Olympus" in field_text(response, "timezone_id")
    assert "expected 6 or 7 fields" in field_text(response, "cron_expression")
    assert "'bad key!' may only contain" in field_text(response, "tasks-1-task_key")
    assert ("depends_on[0].outcome: only allowed when depending on a condition_task"
            in field_text(response, "tasks-1-depends_on"))
    assert "is required" in field_text(response, "tasks-1-sql_query_text")


def test_server_checks_run_once_the_settings_are_valid(browser):
    response = browser.post(reverse("jobs:new"), job_post([
        {"task_key": "run", "task_type": "run_job_task", "run_job_id": "424242"},
        {"task_key": "q", "task_type": "sql_task", "sql_warehouse_id": "nowhere", "sql_query_text": "select 1"},
    ]))

    assert response.status_code == 200 and not Job.objects.exists()
    assert "job 424242 does not exist" in field_text(response, "tasks-0-run_job_id")
    assert "SQL warehouse 'nowhere' is not configured" in field_text(response, "tasks-1-sql_warehouse_id")


def test_a_problem_with_no_field_on_the_form_is_shown_at_the_top_with_its_path(browser, user):
    job = Job(kind=Job.Kind.JOB, creator=user)
    # Saved around the validator, as an older server might have: the form keeps what it does not show.
    job.save_version({**make_job(user).settings, "triggers": [{"model": {"condition": "MODEL_CREATED"}}]}, user)
    url = reverse("jobs:edit", args=[job.id])

    response = browser.post(url, form_values(browser.get(url).content.decode()))

    assert response.status_code == 200 and job.versions.count() == 1
    top = BeautifulSoup(response.content, "html.parser").find(class_="alert-danger").get_text(" ", strip=True)
    assert "The job was not saved" in top and "triggers[0].model: model triggers are not supported" in top


def test_fields_of_a_task_type_not_chosen_do_not_block_a_save(browser):
    response = browser.post(reverse("jobs:new"), job_post([
        {"task_key": "a", "shell_command": "true", "for_each_task": "{not json", "notebook_base_parameters": "no equals"}]))

    assert response.status_code == 302
    assert Job.objects.get().settings["tasks"][0]["shell_command_task"] == {"command": "true"}


def test_a_malformed_line_is_an_error_on_its_field_and_nothing_is_validated_yet(browser):
    response = browser.post(reverse("jobs:new"),
                            job_post([{"task_key": "a", "shell_command": "true"}], tags="no equals sign"))

    assert response.status_code == 200 and not Job.objects.exists()
    assert "line 1: write name=value" in field_text(response, "tags")


def test_the_form_offers_every_task_type_the_server_runs():
    assert sorted(TASK_TYPE_LABELS) == sorted(EXECUTABLE_TASK_TYPES)


def make_forms(*task_keys):
    job_form = JobForm({})
    task_forms = [TaskForm({"task_key": key}) for key in task_keys]
    for form in (job_form, *task_forms):
        form.is_valid()
    return job_form, task_forms


@pytest.mark.parametrize(("path", "form", "field", "message"), [
    ("tasks[1].spark_python_task.python_file", 1, "python_file", "boom"),
    ("tasks[0].depends_on[0].task_key", 0, "depends_on", "depends_on[0].task_key: boom"),
    ("tasks[1].for_each_task.task.shell_command_task.command", 1, "for_each_task",
     "for_each_task.task.shell_command_task.command: boom"),
    ("tasks[0]", 0, "task_type", "boom"),
    ("tasks[0].sql_task", 0, "sql_kind", "boom"),
    ("trigger.table_update.table_names[2]", "job", "table_names", "trigger.table_update.table_names[2]: boom"),
    ("schedule.pause_status", "job", "paused", "boom"),
    ("tags.team", "job", "tags", "tags.team: boom"),
])
def test_problem_paths_map_to_the_form_field_they_concern(path, form, field, message):
    job_form, task_forms = make_forms("a", "b")

    unplaced = place_problems([Problem(path, "boom")], job_form, task_forms)

    target = job_form if form == "job" else task_forms[form]
    assert unplaced == [] and target.errors[field] == [message]


@pytest.mark.parametrize("path", ["made.up[0]", "tasks[7].task_key", "tasks[0].libraries", "tasks"])
def test_problem_paths_the_form_does_not_have_stay_unplaced(path):
    job_form, task_forms = make_forms("a", "b")

    assert place_problems([Problem(path, "boom")], job_form, task_forms) == [Problem(path, "boom")]


# --- the YAML / JSON editor -------------------------------------------------------------


def source_of(response):
    return BeautifulSoup(response.content, "html.parser").find("textarea", attrs={"name": "source"}).text.removeprefix("\n")


def test_the_source_view_shows_the_settings_as_yaml_and_saves_an_edit(browser, user):
    job = make_job(user)
    url = reverse("jobs:edit_source", args=[job.id])
    text = source_of(browser.get(url))
    assert "task_key: hello" in text and "command: echo hi" in text

    edited = text.replace("echo hi", "|\n        echo one\n        echo two")

    response = browser.post(url, {"format": "yaml", "source": edited})

    job.refresh_from_db()
    assert response.status_code == 302 and job.current_version.number == 2
    assert job.settings["tasks"][0]["shell_command_task"]["command"] == "echo one\necho two\n"


def test_the_source_view_shows_problems_with_their_paths_and_keeps_the_text(browser, user):
    job = make_job(user)
    url = reverse("jobs:edit_source", args=[job.id])
    typed = "name: broken\ntasks:\n- task_key: hello\n  depends_on: [{task_key: ghost}]\n  shell_command_task: {command: echo}\n"

    response = browser.post(url, {"format": "yaml", "source": typed})

    assert response.status_code == 200 and job.versions.count() == 1
    assert "tasks[0].depends_on[0].task_key: there is no task 'ghost' in this job" in page_text(response)
    assert source_of(response) == typed


def test_the_source_view_names_the_line_of_a_yaml_error(browser):
    response = browser.post(reverse("jobs:new_source"), {"format": "yaml", "source": "name: x\ntasks: [\n"})

    assert response.status_code == 200 and not Job.objects.exists()
    assert "Not valid YAML at line 3" in page_text(response)
    assert source_of(response) == "name: x\ntasks: [\n"


def test_a_new_job_can_be_written_as_json_and_dates_stay_strings_in_yaml(browser):
    response = browser.post(reverse("jobs:new_source"), {"format": "json", "source": (
        '{"name": "from json", "parameters": [{"name": "day", "default": "x"}],'
        ' "tasks": [{"task_key": "t", "shell_command_task": {"command": "true"}}]}')})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.name == "from json" and job.current_version.number == 1

    response = browser.post(reverse("jobs:edit_source", args=[job.id]), {"format": "yaml", "source": (
        "name: dated\nparameters:\n- {name: day, default: 2026-01-01}\n"
        "tasks:\n- task_key: t\n  shell_command_task: {command: 'true'}\n")})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.settings["parameters"] == [{"name": "day", "default": "2026-01-01"}]


def test_switching_the_source_to_json_keeps_unsaved_edits_and_saves_nothing(browser, user):
    job = make_job(user)

    response = browser.post(reverse("jobs:edit_source", args=[job.id]), {
        "format": "yaml", "convert": "json", "source": "name: renamed\ntasks: []\n"})

    assert response.status_code == 200 and job.versions.count() == 1
    assert source_of(response) == '{\n  "name": "renamed",\n  "tasks": []\n}\n'
    assert form_values(response.content.decode(), "source-form")["format"] == "json"


def test_an_older_version_opens_in_the_source_view_to_be_restored(browser, user):
    job = make_job(user)
    job.save_version({**job.settings, "name": "renamed"}, user)

    response = browser.get(reverse("jobs:edit_source", args=[job.id]) + "?version=1")

    assert "name: nightly" in source_of(response)
    assert browser.get(reverse("jobs:edit_source", args=[job.id]) + "?version=9").status_code == 404


# --- the version history ----------------------------------------------------------------


def test_the_versions_page_diffs_the_latest_version_against_the_one_before(browser, user):
    job = make_job(user)
    settings = job.settings
    settings["tasks"][0]["shell_command_task"]["command"] = "echo <b>bye</b>"
    job.save_version(settings, user)

    response = browser.get(reverse("jobs:versions", args=[job.id]))

    assert response.status_code == 200
    soup = BeautifulSoup(response.content, "html.parser")
    assert [row.find("td").get_text(" ", strip=True) for row in soup.select("#version-list tbody tr")] == ["2 current", "1"]
    assert "ada" in soup.select_one("#version-list tbody").get_text()
    removed = [span.get_text() for span in soup.select("#version-diff .diff-del")]
    added = [span.get_text() for span in soup.select("#version-diff .diff-add")]
    assert removed == ["-    command: echo hi"] and added == ["+    command: echo <b>bye</b>"]
    assert "&lt;b&gt;bye&lt;/b&gt;" in response.content.decode()  # escaped, not markup
    assert [span.get_text() for span in soup.select("#version-diff .diff-meta")] == ["--- version 1", "+++ version 2"]


def test_any_two_versions_can_be_compared_and_the_first_against_nothing(browser, user):
    job = make_job(user)
    for name in ("two", "three"):
        job.save_version({**job.settings, "name": name}, user)
    url = reverse("jobs:versions", args=[job.id])

    soup = BeautifulSoup(browser.get(url + "?old=1&new=3").content, "html.parser")
    assert [s.get_text() for s in soup.select(".diff-add")] == ["+name: three"]

    soup = BeautifulSoup(browser.get(url + "?new=1").content, "html.parser")
    assert "+name: nightly" in [s.get_text() for s in soup.select(".diff-add")] and not soup.select(".diff-del")

    assert "have the same settings" in page_text(browser.get(url + "?old=2&new=2"))
    assert browser.get(url + "?old=1&new=7").status_code == 404


# --- access -----------------------------------------------------------------------------


def authoring_urls(job_id):
    return [reverse("jobs:edit", args=[job_id]), reverse("jobs:edit_source", args=[job_id]),
            reverse("jobs:versions", args=[job_id])]


def test_a_missing_or_deleted_job_is_not_found(browser, user):
    deleted = make_job(user)
    Job.objects.filter(id=deleted.id).update(deleted_at=deleted.created_at)
    for url in authoring_urls(999_999) + authoring_urls(deleted.id):
        assert browser.get(url).status_code == 404, url
    assert browser.post(reverse("jobs:edit", args=[deleted.id]), job_post([])).status_code == 404
    assert JobVersion.objects.filter(job=deleted).count() == 1


def test_every_authoring_page_requires_sign_in(client, user):
    job = make_job(user)
    for url in [reverse("jobs:new"), reverse("jobs:new_source")] + authoring_urls(job.id):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    response = client.post(reverse("jobs:new"), job_post([{"task_key": "a", "shell_command": "true"}]))
    assert response.status_code == 302 and Job.objects.count() == 1


def test_saving_requires_a_csrf_token(user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)

    response = strict.post(reverse("jobs:new"), job_post([{"task_key": "a", "shell_command": "true"}]))

    assert response.status_code == 403 and not Job.objects.exists()
