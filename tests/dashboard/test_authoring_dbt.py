"""A dbt task written in the job form, and one saved through the API kept by it."""

from django.urls import reverse

from jobs.models import Job
from tests.dashboard.conftest import make_job
from tests.dashboard.test_authoring import form_values, job_post


def test_a_dbt_task_from_the_form_is_saved_with_its_commands_in_order(browser):
    response = browser.post(reverse("jobs:new"), job_post([{
        "task_key": "models", "task_type": "dbt_task", "dbt_commands": "dbt seed\ndbt run --select tag:daily\ndbt test",
        "dbt_project_directory": "/Workspace/shop", "dbt_warehouse_id": "pg", "dbt_schema": "marts"}]))

    assert response.status_code == 302, response.content.decode()[:2000]
    task = Job.objects.get().current_version.settings["tasks"][0]
    assert task["dbt_task"] == {"commands": ["dbt seed", "dbt run --select tag:daily", "dbt test"],
                                "project_directory": "/Workspace/shop", "warehouse_id": "pg", "schema": "marts"}


def test_a_command_that_is_not_dbt_is_refused_and_nothing_is_saved(browser):
    response = browser.post(reverse("jobs:new"), job_post([{
        "task_key": "models", "task_type": "dbt_task", "dbt_commands": "ls -la", "dbt_project_directory": "shop"}]))

    assert response.status_code == 200 and not Job.objects.exists()
    assert "must start with dbt (got &#x27;ls -la&#x27;)" in response.content.decode()


def test_an_edited_dbt_task_keeps_what_the_form_does_not_show(browser, user):
    job = make_job(user, tasks=[{"task_key": "models", "dbt_task": {
        "commands": ["dbt run"], "project_directory": "shop", "profiles_directory": "profiles", "catalog": "main"}}])
    page = browser.get(reverse("jobs:edit", args=[job.id])).content.decode()
    values = form_values(page)
    assert values["tasks-0-dbt_commands"] == "dbt run"

    browser.post(reverse("jobs:edit", args=[job.id]), {**values, "tasks-0-dbt_commands": "dbt build"})

    job.refresh_from_db()
    assert job.current_version.settings["tasks"][0]["dbt_task"] == {
        "commands": ["dbt build"], "project_directory": "shop", "profiles_directory": "profiles", "catalog": "main"}
