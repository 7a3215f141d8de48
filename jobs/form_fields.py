"""Which field of the job authoring form holds which setting: read by the form (to build and read
settings) and by form_problems (to place the validator's problems next to their fields); how a
field's value is written into settings; and where the notification destination pickers get their
choices."""

from jobs.spec.notifications import BACKLOG_METRICS, EVENTS, RUN_DURATION
from jobs.spec.triggers import TIMERS

# Per trigger kind: form field -> key in its block (schedule, or trigger.<kind>).
TRIGGER_FIELDS = {
    "schedule": {"cron_expression": "quartz_cron_expression", "timezone_id": "timezone_id"},
    "periodic": {"periodic_interval": "interval", "periodic_unit": "unit"},
    "file_arrival": {"file_arrival_url": "url", **{timer: timer for timer in TIMERS}},
    "table_update": {"table_names": "table_names", "table_condition": "condition",
                     **{timer: timer for timer in TIMERS}},
    "continuous": {},
    # `jobs` is a list of {job_id, workspace_id}: the form shows its job ids, one per line.
    "job_completion": {"upstream_job_ids": "jobs", "completion_status": "if_status"},
}
COMMON_TASK_FIELDS = ("task_key", "description", "depends_on", "run_if", "timeout_seconds", "max_retries",
                      "min_retry_interval_millis", "retry_on_timeout")
# Per task type: form field -> key inside the task-type block (dotted where it is nested).
TYPE_FIELDS = {
    "notebook_task": {"notebook_path": "notebook_path", "notebook_base_parameters": "base_parameters"},
    "spark_python_task": {"python_file": "python_file", "python_parameters": "parameters"},
    "python_wheel_task": {"wheel_package_name": "package_name", "wheel_entry_point": "entry_point",
                          "wheel_parameters": "parameters", "wheel_named_parameters": "named_parameters"},
    "sql_task": {"sql_warehouse_id": "warehouse_id", "sql_file_path": "file.path",
                 "sql_query_text": "query.query_text", "sql_parameters": "parameters"},
    "shell_command_task": {"shell_command": "command", "shell_parameters": "parameters"},
    "condition_task": {"condition_left": "left", "condition_op": "op", "condition_right": "right"},
    "run_job_task": {"run_job_id": "job_id", "run_job_parameters": "job_parameters"},
    "for_each_task": {"for_each_inputs": "inputs", "for_each_concurrency": "concurrency", "for_each_task": "task"},
    "dbt_task": {"dbt_commands": "commands", "dbt_project_directory": "project_directory",
                 "dbt_warehouse_id": "warehouse_id", "dbt_schema": "schema"},
}
SQL_KIND_FIELDS = {"file": "sql_file_path", "query": "sql_query_text"}

ABSENT = object()


def is_blank(value):
    return value is None or value == "" or value == [] or value == {}


def put(target, key, value, default=ABSENT, keep_blank=False):
    """Write a form value into settings so that an unchanged form changes nothing: a blank value
    removes the key (unless it was blank already), a default is not added where it was absent."""
    if is_blank(value) and not keep_blank:
        if not (key in target and is_blank(target[key])):
            target.pop(key, None)
    elif not (value == default and key not in target):
        target[key] = value


# Notifications and health, the same on the job and on each task: form field -> event or metric.
EMAIL_FIELDS = {f"email_{event}": event for event in EVENTS}
DESTINATION_FIELDS = {f"destinations_{event}": event for event in EVENTS}
HEALTH_FIELDS = {"duration_warning_seconds": RUN_DURATION,
                 **{metric.removeprefix("STREAMING_").lower(): metric for metric in BACKLOG_METRICS}}


def notification_field_at(mutes):
    """Settings paths (relative to the job or the task) -> notification form fields. A rule is
    found by its metric ("health.RUN_DURATION_SECONDS"): form_problems resolves rules[i] to it."""
    return {**{f"email_notifications.{event}": name for name, event in EMAIL_FIELDS.items()},
            **{f"webhook_notifications.{event}": name for name, event in DESTINATION_FIELDS.items()},
            **{f"notification_settings.{mute}": mute for mute in mutes},
            **{f"health.{metric}": name for name, metric in HEALTH_FIELDS.items()}}


# The notification destinations a job may name belong to the notifications app, which jobs
# never imports: it registers a provider of (id, label) pairs here when it loads.
_destination_providers = []


def destination_choices_provider(provider):
    if provider not in _destination_providers:
        _destination_providers.append(provider)
    return provider


def destination_choices():
    """(id, label) of every notification destination, for the form's pickers."""
    return [choice for provider in _destination_providers for choice in provider()]
