"""Notifications and health rules in the job form: per job and per task, filled in from the
settings, saved through the API's validation and its server checks, problems on their fields."""

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from jobs.form_fields import DESTINATION_FIELDS, EMAIL_FIELDS, HEALTH_FIELDS, destination_choices
from jobs.form_problems import place_problems
from jobs.models import Job
from jobs.spec.notifications import TASK_MUTES
from jobs.spec.settings import Problem
from notifications.models import Destination
from tests.dashboard.conftest import make_job
from tests.dashboard.test_authoring import field_text, job_post, make_forms, page_text


def destination(name, kind="WEBHOOK"):
    made = Destination(display_name=name, destination_type=kind,
                       config={"addresses": ["ops@example.com"]} if kind == "EMAIL" else {})
    if kind == "WEBHOOK":
        made.secrets = {"url": "https://hooks.example.com/x"}
    made.save()
    return made


def submitted(html):
    """What a browser submits from the job form as rendered; a multi-select sends each chosen
    option (none when none is chosen), a disabled option is never sent."""
    values = {}
    form = BeautifulSoup(html, "html.parser").find("form", id="job-form")
    for control in form.find_all(["input", "textarea", "select"]):
        name, kind = control.get("name"), control.get("type")
        if not name or kind in ("submit", "button"):
            continue
        if control.name == "textarea":
            values[name] = control.text.removeprefix("\n")
        elif control.name == "select" and control.has_attr("multiple"):
            values[name] = [o.get("value") for o in control.find_all("option", selected=True)
                            if not o.has_attr("disabled")]
        elif control.name == "select":
            option = control.find("option", selected=True) or control.find("option")
            values[name] = option.get("value", option.text)
        elif kind == "checkbox":
            if control.has_attr("checked"):
                values[name] = control.get("value", "on")
        else:
            values[name] = control.get("value", "")
    return values


def chosen(html, name):
    select = BeautifulSoup(html, "html.parser").find("select", attrs={"name": name})
    return [(o.get("value"), o.text) for o in select.find_all("option", selected=True)]


def edit(browser, job, change=None):
    url = reverse("jobs:edit", args=[job.id])
    values = submitted(browser.get(url).content.decode())
    return browser.post(url, {**values, **(change or {})})


def task(key="t", **fields):
    return {"task_key": key, "shell_command_task": {"command": "true"}, **fields}


# --- round trip -------------------------------------------------------------------------


def test_a_job_saved_with_notifications_by_the_api_opens_with_them_filled_in(browser, user):
    a, b = destination("Alpha hook"), destination("Beta pager", "PAGERDUTY")
    job = make_job(user, email_notifications={"on_failure": ["ops@example.com", "lead@example.com"]},
                   webhook_notifications={"on_success": [{"id": b.id}, {"id": a.id}]},
                   notification_settings={"no_alert_for_canceled_runs": True},
                   health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600}]},
                   tasks=[task("hello", email_notifications={"on_start": ["dev@example.com"]},
                               notification_settings={"alert_on_last_attempt": False},
                               health={"rules": [{"metric": "STREAMING_BACKLOG_FILES", "op": "GREATER_THAN",
                                                  "value": 7}]})])

    html = browser.get(reverse("jobs:edit", args=[job.id])).content.decode()
    values = submitted(html)

    assert values["email_on_failure"] == "ops@example.com, lead@example.com"
    assert sorted(values["destinations_on_success"]) == sorted([a.id, b.id])
    assert chosen(html, "destinations_on_success") == [(a.id, "Alpha hook (webhook)"), (b.id, "Beta pager (PagerDuty)")]
    assert values["destinations_on_start"] == []
    assert "no_alert_for_canceled_runs" in values and "no_alert_for_skipped_runs" not in values
    assert values["duration_warning_seconds"] == "600" and values["backlog_files"] == ""
    assert values["tasks-0-email_on_start"] == "dev@example.com"
    assert "tasks-0-alert_on_last_attempt" not in values
    assert values["tasks-0-backlog_files"] == "7" and values["tasks-0-duration_warning_seconds"] == ""
    # The task's section opens by itself when it holds something.
    assert BeautifulSoup(html, "html.parser").select_one("#task-list details.notifications").has_attr("open")


def test_saving_the_form_unchanged_keeps_every_notification_setting_identical(browser, user):
    a, b = destination("Alpha hook"), destination("Beta hook")
    job = make_job(
        user,
        email_notifications={"on_failure": ["ops@example.com"], "on_success": [],
                             "on_maintenance_start": ["infra@example.com"], "no_alert_for_skipped_runs": True},
        # Listed against the order of the options (by name): the list's order is kept.
        webhook_notifications={"on_failure": [{"id": b.id}, {"id": a.id}], "on_maintenance_complete": [{"id": a.id}]},
        notification_settings={"no_alert_for_skipped_runs": False},
        health={"rules": [{"metric": "STREAMING_BACKLOG_SECONDS", "op": "GREATER_THAN", "value": 30},
                          {"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 3600}]},
        tasks=[task("a", notification_settings={"alert_on_last_attempt": True}, health={"rules": []},
                    webhook_notifications={"on_duration_warning_threshold_exceeded": [{"id": a.id}]}),
               task("b", notification_settings={}, email_notifications={}),
               task("c")])

    response = edit(browser, job)

    assert response.status_code == 302, page_text(response)
    job.refresh_from_db()
    assert job.current_version.number == 2
    assert job.settings == job.versions.get(number=1).settings


def test_a_post_from_a_page_without_the_notification_fields_keeps_the_notifications(browser, user):
    # A form loaded before the server knew these fields posts none of them: nothing is cleared.
    job = make_job(user, email_notifications={"on_failure": ["ops@example.com"]},
                   tasks=[task("t", notification_settings={"alert_on_last_attempt": False})])
    new_fields = {"notifications_on_form", *EMAIL_FIELDS, *DESTINATION_FIELDS, *TASK_MUTES, *HEALTH_FIELDS}
    values = {name: value for name, value in submitted(browser.get(reverse("jobs:edit", args=[job.id])).content.decode()).items()
              if name.rsplit("-", 1)[-1] not in new_fields}

    response = browser.post(reverse("jobs:edit", args=[job.id]), values)

    assert response.status_code == 302, page_text(response)
    job.refresh_from_db()
    assert job.settings == job.versions.get(number=1).settings


# --- editing ----------------------------------------------------------------------------


def test_notifications_set_in_the_form_are_saved_on_the_job_and_on_the_task(browser, user):
    a, b = destination("Alpha hook"), destination("Beta mail", "EMAIL")
    job = make_job(user)

    response = edit(browser, job, {
        "email_on_failure": "ops@example.com,\nlead@example.com; oncall@example.com",
        "destinations_on_success": [a.id, b.id], "no_alert_for_skipped_runs": "on",
        "duration_warning_seconds": "900", "backlog_records": "1000",
        "tasks-0-email_on_duration_warning_threshold_exceeded": "dev@example.com",
        "tasks-0-destinations_on_streaming_backlog_exceeded": [a.id],
        "tasks-0-no_alert_for_canceled_runs": "on", "tasks-0-backlog_bytes": "1048576"})

    assert response.status_code == 302, page_text(response)
    job.refresh_from_db()
    settings = job.settings
    assert settings["email_notifications"] == {
        "on_failure": ["ops@example.com", "lead@example.com", "oncall@example.com"]}
    assert settings["webhook_notifications"] == {"on_success": [{"id": a.id}, {"id": b.id}]}
    assert settings["notification_settings"] == {"no_alert_for_skipped_runs": True}
    assert settings["health"] == {"rules": [
        {"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 900},
        {"metric": "STREAMING_BACKLOG_RECORDS", "op": "GREATER_THAN", "value": 1000}]}
    hello = settings["tasks"][0]
    assert hello["email_notifications"] == {"on_duration_warning_threshold_exceeded": ["dev@example.com"]}
    assert hello["webhook_notifications"] == {"on_streaming_backlog_exceeded": [{"id": a.id}]}
    # alert_on_last_attempt stayed checked, which is the default: it is not written.
    assert hello["notification_settings"] == {"no_alert_for_canceled_runs": True}
    assert hello["health"] == {"rules": [{"metric": "STREAMING_BACKLOG_BYTES", "op": "GREATER_THAN", "value": 1048576}]}


def test_unchecking_alert_on_last_attempt_writes_false_and_checking_it_again_writes_true(browser, user):
    job = make_job(user)
    values = submitted(browser.get(reverse("jobs:edit", args=[job.id])).content.decode())
    assert values["tasks-0-alert_on_last_attempt"] == "on"  # checked when absent: our default
    del values["tasks-0-alert_on_last_attempt"]

    assert browser.post(reverse("jobs:edit", args=[job.id]), values).status_code == 302
    job.refresh_from_db()
    assert job.settings["tasks"][0]["notification_settings"] == {"alert_on_last_attempt": False}

    assert edit(browser, job, {"tasks-0-alert_on_last_attempt": "on"}).status_code == 302
    job.refresh_from_db()
    assert job.settings["tasks"][0]["notification_settings"] == {"alert_on_last_attempt": True}


def test_clearing_fields_removes_what_they_held_and_keeps_what_the_form_does_not_show(browser, user):
    a = destination("Alpha hook")
    job = make_job(user,
                   email_notifications={"on_failure": ["ops@example.com"], "on_maintenance_start": ["infra@example.com"]},
                   webhook_notifications={"on_failure": [{"id": a.id}]},
                   health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60},
                                     {"metric": "STREAMING_BACKLOG_FILES", "op": "GREATER_THAN", "value": 5}]})

    response = edit(browser, job, {"email_on_failure": "", "destinations_on_failure": [],
                                   "duration_warning_seconds": "", "backlog_files": "6"})

    assert response.status_code == 302, page_text(response)
    job.refresh_from_db()
    assert job.settings["email_notifications"] == {"on_maintenance_start": ["infra@example.com"]}
    assert job.settings["webhook_notifications"] == {}
    assert job.settings["health"] == {"rules": [{"metric": "STREAMING_BACKLOG_FILES", "op": "GREATER_THAN", "value": 6}]}


def test_a_new_job_from_the_form_gets_no_empty_notification_blocks(browser):
    response = browser.post(reverse("jobs:new"), {
        **job_post([{"task_key": "a", "shell_command": "true", "notifications_on_form": "True",
                     "alert_on_last_attempt": "on"}]),
        "notifications_on_form": "True"})

    assert response.status_code == 302, page_text(response)
    settings = Job.objects.get().settings
    blocks = ("email_notifications", "webhook_notifications", "notification_settings", "health")
    assert not set(blocks) & set(settings) and not set(blocks) & set(settings["tasks"][0])


# --- bad input --------------------------------------------------------------------------


def test_an_invalid_address_is_shown_on_its_field_and_nothing_is_saved(browser, user):
    job = make_job(user)

    response = edit(browser, job, {"email_on_failure": "ops@example.com, not-an-address",
                                   "tasks-0-email_on_start": "Ada <ada@example.com>"})

    assert response.status_code == 200 and job.versions.count() == 1
    assert "'not-an-address' is not a valid email address" in field_text(response, "email_on_failure")
    assert "'Ada <ada@example.com>' is not a valid email address" in field_text(response, "tasks-0-email_on_start")
    assert submitted(response.content.decode())["email_on_failure"] == "ops@example.com, not-an-address"
    assert "2 problems marked below" in page_text(response)


def test_an_unknown_destination_is_shown_on_its_field_and_stays_chosen(browser, user):
    job = make_job(user)

    response = edit(browser, job, {"destinations_on_failure": ["no-such-id"],
                                   "tasks-0-destinations_on_success": ["gone-too"]})

    assert response.status_code == 200 and job.versions.count() == 1
    assert "there is no notification destination with id 'no-such-id'" in field_text(response, "destinations_on_failure")
    assert "there is no notification destination with id 'gone-too'" in field_text(
        response, "tasks-0-destinations_on_success")
    assert chosen(response.content.decode(), "destinations_on_failure") == [
        ("no-such-id", "no-such-id (no such destination)")]


def test_a_deleted_destination_shows_as_chosen_and_saving_names_it_until_it_is_unchosen(browser, user):
    a, b = destination("Alpha hook"), destination("Beta hook")
    job = make_job(user, webhook_notifications={"on_failure": [{"id": a.id}, {"id": b.id}]})
    a_id = a.id
    a.delete()

    html = browser.get(reverse("jobs:edit", args=[job.id])).content.decode()
    assert (a_id, f"{a_id} (no such destination)") in chosen(html, "destinations_on_failure")
    response = edit(browser, job)
    assert response.status_code == 200 and job.versions.count() == 1
    assert f"there is no notification destination with id '{a_id}'" in field_text(response, "destinations_on_failure")

    assert edit(browser, job, {"destinations_on_failure": [b.id]}).status_code == 302
    job.refresh_from_db()
    assert job.settings["webhook_notifications"] == {"on_failure": [{"id": b.id}]}


def test_more_than_three_destinations_for_an_event_is_refused_on_its_field(browser, user):
    ids = [destination(f"hook {i}").id for i in range(4)]
    job = make_job(user)

    response = edit(browser, job, {"destinations_on_start": ids})

    assert response.status_code == 200 and job.versions.count() == 1
    assert "at most 3 destinations per event" in field_text(response, "destinations_on_start")


@pytest.mark.parametrize(("typed", "message"), [
    ("abc", "Enter a whole number."), ("1.5", "Enter a whole number."),
    ("0", "must be between 1 and"), ("-5", "must be between 1 and")])
def test_a_threshold_that_is_not_a_positive_integer_is_shown_on_its_field(browser, user, typed, message):
    job = make_job(user)

    response = edit(browser, job, {"duration_warning_seconds": "60", "backlog_files": typed,
                                   "tasks-0-duration_warning_seconds": typed})

    assert response.status_code == 200 and job.versions.count() == 1
    assert message in field_text(response, "backlog_files")
    assert message in field_text(response, "tasks-0-duration_warning_seconds")
    assert message not in field_text(response, "duration_warning_seconds")


def test_a_health_rule_problem_lands_on_the_field_of_its_metric():
    job_form, task_forms = make_forms("a")
    settings = {"health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "value": 1},
                                     {"metric": "STREAMING_BACKLOG_FILES", "value": 0}]},
                "tasks": [{"task_key": "a", "health": {"rules": [{"metric": "STREAMING_BACKLOG_BYTES", "value": -1}]}}]}

    unplaced = place_problems([Problem("health.rules[1].value", "boom"), Problem("tasks[0].health.rules[0].value", "bang"),
                               Problem("webhook_notifications.on_start[0].id", "no such"),
                               Problem("tasks[0].notification_settings.alert_on_last_attempt", "odd")],
                              job_form, task_forms, settings)

    assert unplaced == []
    assert job_form.errors["backlog_files"] == ["health.rules[1].value: boom"]
    assert job_form.errors["destinations_on_start"] == ["webhook_notifications.on_start[0].id: no such"]
    assert task_forms[0].errors["backlog_bytes"] == ["health.rules[0].value: bang"]
    assert task_forms[0].errors["alert_on_last_attempt"] == ["odd"]


# --- where the choices come from --------------------------------------------------------


def test_the_notifications_app_offers_its_destinations_to_the_form(browser, db):
    made = destination("Ops mail", "EMAIL")

    assert (made.id, "Ops mail (email)") in destination_choices()
    html = browser.get(reverse("jobs:new")).content.decode()
    options = BeautifulSoup(html, "html.parser").find("select", attrs={"name": "destinations_on_failure"}).find_all("option")
    assert [(o.get("value"), o.text) for o in options] == [(made.id, "Ops mail (email)")]


def test_with_no_destinations_the_picker_says_so_and_offers_nothing_to_choose(browser):
    html = browser.get(reverse("jobs:new")).content.decode()

    select = BeautifulSoup(html, "html.parser").find("select", attrs={"name": "destinations_on_failure"})
    assert [(o.get("value"), o.text, o.has_attr("disabled")) for o in select.find_all("option")] == [
        ("", "None defined yet", True)]
