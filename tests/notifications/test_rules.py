"""Which notification event a run's happening fires, and to whom (notifications/rules.py). Pure."""

from notifications.rules import Happening, cause_key, event_of, recipients, settings_notify

HOOK = {"on_failure": [{"id": "d1"}], "on_success": [{"id": "d1"}], "on_start": [{"id": "d1"}]}


def test_a_run_that_succeeds_or_succeeds_with_failures_fires_on_success():
    assert event_of({}, Happening("end", result_state="SUCCESS"), task=False) == "on_success"
    assert event_of({}, Happening("end", result_state="SUCCESS_WITH_FAILURES"), task=False) == "on_success"


def test_failed_timed_out_canceled_and_skipped_runs_fire_on_failure():
    for result in ("FAILED", "TIMEDOUT", "CANCELED", "MAXIMUM_CONCURRENT_RUNS_REACHED", "UPSTREAM_FAILED"):
        assert event_of({}, Happening("end", result_state=result), task=False) == "on_failure", result


def test_the_mutes_silence_canceled_and_skipped_runs_only():
    mutes = {"notification_settings": {"no_alert_for_canceled_runs": True, "no_alert_for_skipped_runs": True}}
    assert event_of(mutes, Happening("end", result_state="CANCELED"), task=False) is None
    assert event_of(mutes, Happening("end", result_state="MAXIMUM_CONCURRENT_RUNS_REACHED"), task=False) is None
    assert event_of(mutes, Happening("end", result_state="FAILED"), task=False) == "on_failure"


def test_the_deprecated_email_mute_for_skipped_runs_still_mutes():
    block = {"email_notifications": {"no_alert_for_skipped_runs": True}}
    assert event_of(block, Happening("end", result_state="UPSTREAM_FAILED"), task=True) is None


def test_excluded_and_disabled_tasks_never_alert():
    for result in ("EXCLUDED", "DISABLED"):
        assert event_of({}, Happening("end", result_state=result), task=True) is None


def test_a_task_failure_with_a_retry_to_follow_alerts_only_when_asked_for_every_attempt():
    failing = Happening("end", result_state="FAILED", retry_follows=True)
    assert event_of({}, failing, task=True) is None
    assert event_of({"notification_settings": {"alert_on_last_attempt": True}}, failing, task=True) is None
    assert event_of({"notification_settings": {"alert_on_last_attempt": False}}, failing, task=True) == "on_failure"
    assert event_of({}, Happening("end", result_state="FAILED"), task=True) == "on_failure"


def test_a_retry_starting_alerts_on_start_only_when_asked_for_every_attempt():
    retry = Happening("start", first_try=False)
    assert event_of({}, retry, task=True) is None
    assert event_of({"notification_settings": {"alert_on_last_attempt": False}}, retry, task=True) == "on_start"
    assert event_of({}, Happening("start"), task=True) == "on_start"


def test_health_breaches_fire_their_own_events():
    assert event_of({}, Happening("health", metric="RUN_DURATION_SECONDS"), task=False) == \
        "on_duration_warning_threshold_exceeded"
    assert event_of({}, Happening("health", metric="STREAMING_BACKLOG_FILES"), task=True) == \
        "on_streaming_backlog_exceeded"


def test_recipients_are_email_addresses_and_destinations_each_once():
    block = {"email_notifications": {"on_failure": ["a@example.com", "a@example.com", "b@example.com"]},
             "webhook_notifications": {"on_failure": [{"id": "d1"}, {"id": "d2"}]}}
    assert recipients(block, "on_failure") == ["email:a@example.com", "email:b@example.com",
                                               "destination:d1", "destination:d2"]
    assert recipients(block, "on_success") == []


def test_a_job_notifies_when_it_or_any_task_names_someone_or_has_health_rules():
    assert not settings_notify({"tasks": [{"task_key": "t"}]})
    assert settings_notify({"webhook_notifications": HOOK})
    assert settings_notify({"tasks": [{"task_key": "t", "email_notifications": {"on_start": ["a@example.com"]}}]})
    assert settings_notify({"tasks": [{"task_key": "t", "health": {"rules": [{}]}}]})


def test_causes_tell_job_and_task_occasions_apart():
    assert cause_key("on_failure", "", "run") == "job:on_failure:run"
    assert cause_key("on_failure", "t", "attempt-7") == "task:t:on_failure:attempt-7"
    assert cause_key("on_failure", "", "repair-3") != cause_key("on_failure", "", "run")
