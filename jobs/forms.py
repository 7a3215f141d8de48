"""The job authoring forms: JobSettings shown as a job form plus one form per task, turned back
into JobSettings, and the validator's problems placed next to the fields they concern.

The forms model the common fields, notifications and health rules included. Everything else
(job clusters, a task's libraries, a notebook's source, on_maintenance_* lists, ...) is carried
over from the settings being edited, so loading a job and saving it unchanged gives back the
same settings.
"""

import copy

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Div, Layout
from crispy_forms.utils import TEMPLATE_PACK
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.template.defaultfilters import pluralize
from django.utils.html import format_html

from jobs.spec.notifications import JOB_MUTES, MAX_WEBHOOKS_PER_EVENT, TASK_MUTES
from jobs.spec.settings import CONDITION_OPS, MAX_TASKS, RUN_IF, TASK_DEFAULTS, TASK_TYPES, task_type_of
from jobs.spec.triggers import PERIODIC_UNITS, SUPPORTED_TRIGGERS, TIMERS, UNSUPPORTED_TRIGGERS, trigger_block
from jobs.form_fields import (ABSENT, COMMON_TASK_FIELDS, DESTINATION_FIELDS, EMAIL_FIELDS, HEALTH_FIELDS,
                              SQL_KIND_FIELDS, TRIGGER_FIELDS, TYPE_FIELDS, destination_choices, put)
from jobs.form_notifications import NotificationFields, notification_initial, put_notifications
from jobs.form_problems import place_problems
from jobs.settings_text import settings_from_text
from jobs.text_fields import DependsOnField, JobParametersField, JsonObjectField, LinesField, PairsField

# --- layout helpers ---------------------------------------------------------------------


def _row(*fields, widths=None):
    """Fields side by side on medium screens and up; `widths` in twelfths, equal by default."""
    widths = widths or [12 // len(fields)] * len(fields)
    return Div(*(Div(name, css_class=f"col-md-{width}") for name, width in zip(fields, widths)), css_class="row g-3")


def _when(field, values, *fields):
    """A group that job_form.js shows only while `field` has one of `values` (space-separated)."""
    return Div(*fields, data_when_field=field, data_when_value=values)


def _card(title, *fields, css="mb-3"):
    return Div(HTML(f'<div class="card-header fw-semibold">{title}</div>'),
               Div(*fields, css_class="card-body"), css_class=f"card shadow-sm {css}")


class _Details(Div):
    """Fields folded under a summary, unfolded when one of them is set or has a problem."""

    def __init__(self, summary, *fields, names=()):
        super().__init__(*fields)
        self.summary, self.names = summary, names

    def render(self, form, context, template_pack=TEMPLATE_PACK, **kwargs):
        inner = self.get_rendered_fields(form, context, template_pack, **kwargs)
        unfold = any(form[name].errors or _unset(form[name].value()) != _unset(form.fields[name].initial)
                     for name in self.names)
        return format_html('<details class="notifications mt-3"{}><summary class="fw-semibold mb-2">{}</summary>'
                           '{}</details>', " open" if unfold else "", self.summary, inner)


def _unset(value):
    return None if value in (None, "", [], False) else value


def _helper(layout, error_title=None):
    helper = FormHelper()
    if error_title:
        helper.form_error_title = error_title
    helper.form_tag = False
    helper.disable_csrf = True
    helper.layout = layout
    return helper


# --- notifications and health, on the job and on each task -----------------------------

NOTIFICATIONS_HELP = ('<p class="form-text mt-0">Email addresses are separated by commas or new lines. Destinations '
                      'are the ones a workspace admin defines under Notifications: at most '
                      f'{MAX_WEBHOOKS_PER_EVENT} per event; Ctrl- or ⌘-click picks more than one.</p>')
BACKLOG_HELP = ('<p class="form-text mb-1">Streaming backlog thresholds (optional), compared with the figures a task '
                'reports as task values of those names, e.g. <code>STREAMING_BACKLOG_RECORDS</code>.</p>')


def notifications_layout(mutes):
    backlog = [name for name in HEALTH_FIELDS if name != "duration_warning_seconds"]
    return (HTML(NOTIFICATIONS_HELP), "notifications_on_form",
            *(_row(email, destinations, widths=[7, 5])
              for email, destinations in zip(EMAIL_FIELDS, DESTINATION_FIELDS)),
            *mutes, _row("duration_warning_seconds", widths=[6]), HTML(BACKLOG_HELP), _row(*backlog))


# --- the job ----------------------------------------------------------------------------

TRIGGER_KINDS = [("", "None: run it by hand or through the API"), ("schedule", "Scheduled (cron)"),
                 ("periodic", "Periodic"), ("file_arrival", "File arrival"), ("table_update", "Table update"),
                 ("continuous", "Continuous"), ("job_completion", "Job completion")]
TRIGGER_BLOCK = {"schedule": "schedule", "continuous": "continuous",
                 "periodic": "trigger", "file_arrival": "trigger", "table_update": "trigger",
                 "job_completion": "trigger"}
COMPLETION_STATUSES = [("SUCCESS", "All of them succeeded"), ("FAILED", "All of them failed"),
                       ("DONE", "All of them ended, however")]
PAUSABLE = " ".join(TRIGGER_BLOCK)


class JobForm(NotificationFields, forms.Form):
    mutes = JOB_MUTES
    use_required_attribute = False  # the server validates, exactly as the API does

    name = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "Untitled"}))
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = PairsField(required=False, help_text="One key=value per line, e.g. <code>team=data</code>.")
    parameters = JobParametersField(
        required=False, label="Job parameters",
        help_text="One name=default per line; tasks read them as <code>{{job.parameters.name}}</code>.")
    trigger_kind = forms.ChoiceField(choices=TRIGGER_KINDS, required=False, label="Trigger")
    cron_expression = forms.CharField(
        required=False, label="Quartz cron expression", widget=forms.TextInput(attrs={"placeholder": "0 0 6 * * ?"}),
        help_text="Seconds, minutes, hours, day of month, month, day of week; <code>0 0 6 * * ?</code> is 06:00 daily.")
    timezone_id = forms.CharField(required=False, label="Time zone", initial="UTC",
                                  widget=forms.TextInput(attrs={"list": "time-zones"}))
    periodic_interval = forms.IntegerField(required=False, label="Every", initial=1)
    periodic_unit = forms.ChoiceField(choices=[(u, u.lower()) for u in PERIODIC_UNITS], required=False,
                                      label="Unit", initial="DAYS")
    file_arrival_url = forms.CharField(
        required=False, label="Watched directory", widget=forms.TextInput(attrs={"placeholder": "/data/incoming"}),
        help_text="An absolute path or a <code>file:///</code> URI of a directory this server can read; "
                  "new files start a run.")
    table_names = LinesField(required=False, label="Tables", help_text="One table name per line, at most 10.")
    table_condition = forms.ChoiceField(
        choices=[("ANY_UPDATED", "Any of the tables is updated"), ("ALL_UPDATED", "All of the tables are updated")],
        required=False, label="Run when", initial="ANY_UPDATED")
    min_time_between_triggers_seconds = forms.IntegerField(
        required=False, label="Minimum seconds between runs", help_text="At least 60; leave empty (or 0) for no limit.")
    wait_after_last_change_seconds = forms.IntegerField(
        required=False, label="Wait seconds after the last change",
        help_text="At least 60; leave empty (or 0) to start at once.")
    upstream_job_ids = LinesField(
        required=False, label="Upstream job ids",
        help_text="One job id per line, at most 10: a run starts once each has completed since the last one.")
    completion_status = forms.ChoiceField(choices=COMPLETION_STATUSES, required=False, label="Start when",
                                          initial="SUCCESS")
    paused = forms.BooleanField(required=False, label="Paused: the trigger does not start runs")
    max_concurrent_runs = forms.IntegerField(required=False, initial=1, label="Maximum concurrent runs")
    timeout_seconds = forms.IntegerField(required=False, initial=0, label="Timeout (seconds)",
                                         help_text="A run still going after this long is stopped; 0 means no timeout.")
    queue_enabled = forms.BooleanField(
        required=False, initial=True,
        label="Queue runs that would exceed the concurrency limit (otherwise they are skipped)")

    helper = _helper(Layout(
        _card("Job details", "name", "description", _row("tags", "parameters")),
        _card("Schedules and triggers",
              _row("trigger_kind", widths=[6]),
              _when("trigger_kind", "schedule", _row("cron_expression", "timezone_id", widths=[7, 5])),
              _when("trigger_kind", "periodic", _row("periodic_interval", "periodic_unit", widths=[3, 3])),
              _when("trigger_kind", "file_arrival", "file_arrival_url"),
              _when("trigger_kind", "table_update", _row("table_names", "table_condition", widths=[7, 5])),
              _when("trigger_kind", "file_arrival table_update", _row(*TIMERS)),
              _when("trigger_kind", "job_completion", _row("upstream_job_ids", "completion_status", widths=[6, 6])),
              _when("trigger_kind", PAUSABLE, "paused")),
        _card("Run settings", _row("max_concurrent_runs", "timeout_seconds"), "queue_enabled"),
        _card("Notifications and health", *notifications_layout(JOB_MUTES)),
    ), error_title="The job was not saved")

    def clean(self):
        # Fields of the other trigger kinds are hidden: their contents cannot block a save.
        in_use = TRIGGER_FIELDS.get(self.cleaned_data.get("trigger_kind"), {})
        for fields in TRIGGER_FIELDS.values():
            for name in set(fields) - set(in_use):
                self._errors.pop(name, None)
        return self.cleaned_data


def job_initial(settings):
    initial = {
        "name": settings.get("name", ""), "description": settings.get("description", ""),
        "tags": settings.get("tags") or {}, "parameters": settings.get("parameters") or [],
        "max_concurrent_runs": settings.get("max_concurrent_runs", 1),
        "queue_enabled": (settings.get("queue") or {}).get("enabled", True),
        "timeout_seconds": settings.get("timeout_seconds", 0),
        **notification_initial(settings, JOB_MUTES),
    }
    found = trigger_block(settings)
    if found:
        kind, config, paused = found
        inner = config if kind == "schedule" else config.get(kind) or config.get("table") or {}
        initial.update(trigger_kind=kind, paused=paused,
                       **{field: inner[key] for field, key in TRIGGER_FIELDS[kind].items() if key in inner})
        if kind == "job_completion" and isinstance(inner.get("jobs"), list):
            initial["upstream_job_ids"] = [str(entry.get("job_id", "")) if isinstance(entry, dict) else str(entry)
                                           for entry in inner["jobs"]]
    return initial


# --- a task -----------------------------------------------------------------------------

# Every type in EXECUTABLE_TASK_TYPES, in the order the form offers them.
TASK_TYPE_LABELS = {"notebook_task": "Notebook", "spark_python_task": "Python script",
                    "python_wheel_task": "Python wheel", "sql_task": "SQL", "shell_command_task": "Shell command",
                    "condition_task": "If/else condition", "for_each_task": "For each",
                    "run_job_task": "Run another job", "dbt_task": "dbt"}
RUN_IF_LABELS = {"ALL_SUCCESS": "All succeeded", "AT_LEAST_ONE_SUCCESS": "At least one succeeded",
                 "NONE_FAILED": "None failed", "ALL_DONE": "All done", "AT_LEAST_ONE_FAILED": "At least one failed",
                 "ALL_FAILED": "All failed"}
# An empty operand is a real value: `{{tasks.a.values.x}} == ""` is a fair condition.
BLANK_IS_A_VALUE = {"condition_left", "condition_right"}

_TASK_HEADER = """<div class="card-header d-flex align-items-center gap-2">
  <span class="task-number fw-semibold">Task</span><code class="task-title">{{ form.task_key.value|default:"" }}</code>
  <div class="ms-auto btn-group btn-group-sm" role="group" aria-label="Task order">
    <button type="button" class="btn btn-outline-secondary" data-task-action="up">Move up</button>
    <button type="button" class="btn btn-outline-secondary" data-task-action="down">Move down</button>
    <button type="button" class="btn btn-outline-danger" data-task-action="remove">Remove</button>
  </div></div>"""


def _code(rows=3):
    return forms.Textarea(attrs={"rows": rows, "class": "font-monospace", "spellcheck": "false"})


class TaskForm(NotificationFields, forms.Form):
    mutes = TASK_MUTES
    use_required_attribute = False

    # The task as it was loaded: what the form does not model is kept from here.
    original = JsonObjectField(required=False, widget=forms.HiddenInput)
    task_key = forms.CharField(required=False, label="Task name",
                               help_text="Letters, digits, _ and -; unique in the job.")
    task_type = forms.ChoiceField(choices=list(TASK_TYPE_LABELS.items()),
                                  required=False, label="Type", initial="notebook_task")
    notebook_path = forms.CharField(required=False, label="Notebook path")
    notebook_base_parameters = PairsField(required=False, label="Parameters",
                                          help_text="One name=value per line; the notebook reads them as widgets.")
    python_file = forms.CharField(required=False, label="Python file",
                                  help_text="An absolute path, or relative to the workspace root.")
    python_parameters = LinesField(required=False, label="Parameters", help_text="One argument per line.")
    wheel_package_name = forms.CharField(required=False, label="Package name")
    wheel_entry_point = forms.CharField(required=False, label="Entry point")
    wheel_parameters = LinesField(required=False, label="Parameters", help_text="One argument per line.")
    wheel_named_parameters = PairsField(required=False, label="Named parameters", help_text="One name=value per line.")
    sql_warehouse_id = forms.CharField(required=False, label="SQL warehouse",
                                       widget=forms.TextInput(attrs={"list": "warehouses"}))
    sql_kind = forms.ChoiceField(choices=[("query", "Query text"), ("file", "SQL file")], required=False,
                                 label="SQL from", initial="query")
    sql_file_path = forms.CharField(required=False, label="SQL file path")
    sql_query_text = forms.CharField(required=False, label="Query", widget=_code(4))
    sql_parameters = PairsField(required=False, label="Parameters",
                                help_text="One name=value per line; the SQL reads :name.")
    shell_command = forms.CharField(required=False, label="Command", widget=_code(3))
    shell_parameters = LinesField(required=False, label="Parameters",
                                  help_text="One per line; the command sees $1, $2, ...")
    dbt_commands = LinesField(required=False, label="dbt commands",
                              help_text="One per line, each starting with dbt; they run in order.")
    dbt_project_directory = forms.CharField(required=False, label="Project directory",
                                            help_text="The directory with dbt_project.yml.")
    dbt_warehouse_id = forms.CharField(required=False, label="SQL warehouse",
                                       widget=forms.TextInput(attrs={"list": "warehouses"}),
                                       help_text="Empty: the embedded warehouse, default.")
    dbt_schema = forms.CharField(required=False, label="Schema")
    condition_left = forms.CharField(required=False, label="Left operand", strip=False)
    condition_op = forms.ChoiceField(choices=[(op, op.replace("_", " ").lower()) for op in CONDITION_OPS],
                                     required=False, label="Operator")
    condition_right = forms.CharField(required=False, label="Right operand", strip=False)
    run_job_id = forms.IntegerField(required=False, label="Job id",
                                    widget=forms.NumberInput(attrs={"list": "job-ids"}))
    run_job_parameters = PairsField(required=False, label="Job parameters", help_text="One name=value per line.")
    for_each_inputs = forms.CharField(
        required=False, label="Inputs",
        help_text='A JSON array, e.g. <code>["a", "b"]</code>, or a <code>{{...}}</code> reference.')
    for_each_concurrency = forms.IntegerField(required=False, label="Concurrency",
                                              help_text="Iterations at once, 1 to 100.")
    for_each_task = JsonObjectField(required=False, label="Task to run for each input (JSON)",
                                    help_text='A task object, e.g. <code>{"task_key": "one", "shell_command_task": '
                                              '{"command": "echo {{input}}"}}</code>.')
    depends_on = DependsOnField(required=False, label="Depends on",
                                help_text="Task names separated by commas. After an if/else task add the branch: "
                                          "<code>check:true</code>.")
    run_if = forms.ChoiceField(choices=[(r, RUN_IF_LABELS[r]) for r in RUN_IF], required=False,
                               label="Run if dependencies", initial="ALL_SUCCESS")
    max_retries = forms.IntegerField(required=False, initial=0, label="Retries", help_text="-1 retries without limit.")
    min_retry_interval_millis = forms.IntegerField(required=False, initial=0, label="Milliseconds between retries")
    timeout_seconds = forms.IntegerField(required=False, initial=0, label="Timeout (seconds)",
                                         help_text="0 means no timeout.")
    retry_on_timeout = forms.BooleanField(required=False, label="Retry when the task times out")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}))

    helper = _helper(Layout(Div(
        HTML(_TASK_HEADER),
        Div("original",
            _row("task_key", "task_type"),
            _when("task_type", "notebook_task", "notebook_path", "notebook_base_parameters"),
            _when("task_type", "spark_python_task", "python_file", "python_parameters"),
            _when("task_type", "python_wheel_task", _row("wheel_package_name", "wheel_entry_point"),
                  _row("wheel_parameters", "wheel_named_parameters")),
            _when("task_type", "sql_task", _row("sql_warehouse_id", "sql_kind"),
                  _when("sql_kind", "query", "sql_query_text"), _when("sql_kind", "file", "sql_file_path"),
                  "sql_parameters"),
            _when("task_type", "shell_command_task", "shell_command", "shell_parameters"),
            _when("task_type", "dbt_task", "dbt_commands",
                  _row("dbt_project_directory", "dbt_warehouse_id", "dbt_schema", widths=[6, 3, 3])),
            _when("task_type", "condition_task", _row("condition_left", "condition_op", "condition_right",
                                                      widths=[5, 2, 5])),
            _when("task_type", "run_job_task", _row("run_job_id", "run_job_parameters", widths=[4, 8])),
            _when("task_type", "for_each_task",
                  _row("for_each_inputs", "for_each_concurrency", widths=[8, 4]), "for_each_task"),
            _row("depends_on", "run_if", widths=[8, 4]),
            _row("max_retries", "min_retry_interval_millis", "timeout_seconds"),
            "retry_on_timeout", "description",
            _Details("Notifications and health", *notifications_layout(TASK_MUTES),
                     names=[*EMAIL_FIELDS, *DESTINATION_FIELDS, *TASK_MUTES, *HEALTH_FIELDS]),
            css_class="card-body"),
        css_class="card task-card shadow-sm mb-3")))

    def type_fields_in_use(self):
        data = self.cleaned_data
        fields = dict(TYPE_FIELDS.get(data.get("task_type"), {}))
        if data.get("task_type") == "sql_task":
            fields.pop(SQL_KIND_FIELDS["query" if data.get("sql_kind") == "file" else "file"])
        return fields

    def clean(self):
        # Fields of the other task types are hidden: their contents cannot block a save.
        in_use = self.type_fields_in_use()
        for fields in TYPE_FIELDS.values():
            for name in set(fields) - set(in_use):
                self._errors.pop(name, None)
        return self.cleaned_data

    def task(self):
        """This task of JobSettings, over the task it was loaded from."""
        data = self.cleaned_data
        task = copy.deepcopy(data.get("original") or {})
        for name in COMMON_TASK_FIELDS:
            put(task, name, data.get(name), TASK_DEFAULTS.get(name, ABSENT))
        kind = data.get("task_type")
        for other in TASK_TYPES:
            if other != kind:
                task.pop(other, None)
        if data.get("notifications_on_form"):
            put_notifications(task, data, TASK_MUTES)
        if kind:
            block = task[kind] if isinstance(task.get(kind), dict) else {}
            if kind == "sql_task":
                for other in {"file", "query", "alert", "dashboard"} - {data.get("sql_kind") or "query"}:
                    block.pop(other, None)
            for name, key in self.type_fields_in_use().items():
                _put_path(block, key, data.get(name), keep_blank=name in BLANK_IS_A_VALUE)
            task[kind] = block
        return task


def task_initial(task):
    kind = task_type_of(task) or ""
    block = task.get(kind) or {}
    initial = {"original": task, "task_type": kind,
               **{name: task.get(name, TASK_DEFAULTS.get(name, "")) for name in COMMON_TASK_FIELDS}}
    initial["depends_on"] = task.get("depends_on") or []
    initial.update(notification_initial(task, TASK_MUTES))
    for name, key in TYPE_FIELDS.get(kind, {}).items():
        initial[name] = _get_path(block, key)
    if kind == "sql_task":
        initial["sql_kind"] = "file" if "file" in block else "query"
    return {name: value for name, value in initial.items() if value is not None}


class BaseTaskFormSet(forms.BaseFormSet):
    def _construct_form(self, i, **kwargs):
        # Every task card is a task: a blank one is reported by the validator, not skipped.
        return super()._construct_form(i, empty_permitted=False, **kwargs)


# One form over the limit is read, so the validator is the one to say there are too many tasks.
TaskFormSet = forms.formset_factory(TaskForm, formset=BaseTaskFormSet, extra=0,
                                    max_num=MAX_TASKS, absolute_max=MAX_TASKS + 1)


# --- settings <- form values ------------------------------------------------------------


def _dict_at(parent, key):
    """parent[key] as a dict to write into, made empty if it is not one."""
    if not isinstance(parent.get(key), dict):
        parent[key] = {}
    return parent[key]


def _put_path(block, dotted, value, keep_blank=False):
    *parents, key = dotted.split(".")
    for parent in parents:
        block = _dict_at(block, parent)
    put(block, key, value, keep_blank=keep_blank)


def _get_path(block, dotted):
    for key in dotted.split("."):
        block = block.get(key) if isinstance(block, dict) else None
    return block


def _monitored_jobs(current, job_ids):
    """The job ids of the form as job_completion.jobs, each keeping the workspace_id it had."""
    workspaces = {str(entry.get("job_id")): entry.get("workspace_id") for entry in current or []
                  if isinstance(entry, dict)}
    return [{"job_id": job_id, "workspace_id": workspaces.get(job_id) or "0"} for job_id in job_ids or []]


def _put_trigger(settings, data):
    kind = data.get("trigger_kind")
    block_name = TRIGGER_BLOCK.get(kind)
    for name in set(TRIGGER_BLOCK.values()) - {block_name}:
        settings.pop(name, None)
    if block_name is None:
        return
    block = target = _dict_at(settings, block_name)
    if block_name == "trigger":
        name = "table" if kind == "table_update" and "table" in block else kind  # the deprecated spelling stays
        for other in set(SUPPORTED_TRIGGERS + UNSUPPORTED_TRIGGERS) - {name}:
            block.pop(other, None)
        target = _dict_at(block, name)
    values = dict(data)
    if kind == "job_completion":
        values["upstream_job_ids"] = _monitored_jobs(target.get("jobs"), data.get("upstream_job_ids"))
    for field, key in TRIGGER_FIELDS[kind].items():
        default = {"condition": "ANY_UPDATED", "if_status": "SUCCESS"}.get(key, ABSENT)
        put(target, key, values.get(field), default=default)
    block["pause_status"] = "PAUSED" if data.get("paused") else "UNPAUSED"


def job_settings(job_form, task_forms, current):
    """JobSettings from valid forms, over `current` (the settings being edited)."""
    settings = copy.deepcopy(current)
    data = job_form.cleaned_data
    for name in ("name", "description", "tags", "parameters", "max_concurrent_runs", "timeout_seconds"):
        put(settings, name, data.get(name))
    queue = settings["queue"] if isinstance(settings.get("queue"), dict) else {}
    settings["queue"] = {**queue, "enabled": bool(data.get("queue_enabled"))}
    _put_trigger(settings, data)
    if data.get("notifications_on_form"):
        put_notifications(settings, data, JOB_MUTES)
    put(settings, "tasks", [form.task() for form in task_forms])
    return settings


class JobEditor:
    """The job form and its task forms, loaded from JobSettings and saved as JobSettings."""

    def __init__(self, current, data=None, destinations=None):
        self.current = current
        tasks = current.get("tasks") if isinstance(current.get("tasks"), list) else []
        # A new job starts with one blank task; a job saved without tasks shows none.
        initial = [task_initial(task) for task in tasks] if current else [{}]
        destinations = destination_choices() if destinations is None else destinations
        self.job_form = JobForm(data, initial=job_initial(current), destinations=destinations)
        self.tasks = TaskFormSet(data, initial=None if data is not None else initial, prefix="tasks",
                                 form_kwargs={"destinations": destinations})

    def is_valid(self):
        valid = self.job_form.is_valid() & self.tasks.is_valid()  # both, so every error shows at once
        if not valid:
            self._summarize(unplaced=[])
        return valid

    def settings(self):
        return job_settings(self.job_form, self.tasks.forms, self.current)

    def show_problems(self, problems):
        self._summarize(place_problems(problems, self.job_form, self.tasks.forms, self.settings()))

    def _summarize(self, unplaced):
        marked = sum(len(errors) for form in (self.job_form, *self.tasks.forms)
                     for name, errors in form.errors.items() if name != NON_FIELD_ERRORS)
        if marked:
            self.job_form.add_error(None, f"{marked} problem{pluralize(marked)} marked below, next to the field.")
        for message in self.tasks.non_form_errors():
            self.job_form.add_error(None, message)
        for problem in unplaced:
            self.job_form.add_error(None, f"{problem.path}: {problem.message}")


class SourceForm(forms.Form):
    """The whole JobSettings as YAML or JSON text."""

    use_required_attribute = False
    FORMATS = (("yaml", "YAML"), ("json", "JSON"))

    format = forms.ChoiceField(choices=FORMATS, required=False, initial="yaml", widget=forms.HiddenInput)
    source = forms.CharField(required=False, strip=False, label="Job settings",
                             widget=forms.Textarea(attrs={"rows": 30, "class": "font-monospace source-editor",
                                                          "spellcheck": "false"}))

    helper = _helper(Layout("format", "source"))
    helper.form_show_errors = False  # source.html lists them above the text, where they are seen

    def clean(self):
        if "source" in self.cleaned_data:
            try:
                self.cleaned_data["settings"] = settings_from_text(
                    self.cleaned_data["source"], self.cleaned_data.get("format") or "yaml")
            except ValidationError as error:
                self.add_error("source", error)
        return self.cleaned_data

    def show_problems(self, problems):
        for problem in problems:
            self.add_error("source", f"{problem.path}: {problem.message}")
