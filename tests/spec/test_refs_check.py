import pytest

from jobs.spec.refs import unknown_reference_messages

TASK_KEYS = {"extract", "load"}
PARAMETERS = {"env", "my-param"}


def messages(text, in_for_each=False):
    return unknown_reference_messages(
        text, task_keys=TASK_KEYS, job_parameter_names=PARAMETERS, in_for_each=in_for_each)


@pytest.mark.parametrize("text", [
    "{{job.id}} {{job.name}} {{job.run_id}} {{job.repair_count}}",
    "{{job.start_time.iso_date}} {{job.trigger.time.timestamp_ms}} {{job.trigger.type}}",
    "{{job.trigger.file_arrival.location}} {{job.trigger.table_update.updated_tables}}",
    "{{job.trigger.table_update.main.sales.orders.version}}",
    "{{job.trigger.table_update.`main.sales.orders`.commit_timestamp.iso_date}}",
    "{{job.parameters.env}} {{job.parameters.`my-param`}}",
    "{{task.name}} {{task.run_id}} {{task.execution_count}} {{task.notebook_path}}",
    "{{tasks.extract.run_id}} {{tasks.extract.result_state}} {{tasks.extract.error_code}}",
    "{{tasks.extract.execution_count}} {{tasks.extract.values.anything}}",
    "{{tasks.extract.output.rows}} {{tasks.extract.output.first_row.some_column}}",
    "{{workspace.id}} {{workspace.url}}",
    "{{backfill.iso_date}} {{backfill.iso_datetime}} {{backfill.year}} {{backfill.day}}",
    "{{job_id}} {{run_id}} {{start_date}} {{start_time}} {{task_retry_count}}",
    "{{parent_run_id}} {{task_key}}",
])
def test_known_references_produce_no_messages(text):
    assert messages(text) == []


def test_a_misspelt_job_field_is_named():
    assert messages("{{job.naem}}") == ["unknown reference {{job.naem}}: job has no field 'naem'"]


def test_the_message_quotes_the_reference_as_written():
    assert messages("x {{ job.naem }} y") == [
        "unknown reference {{ job.naem }}: job has no field 'naem'"]


def test_a_reference_to_a_task_not_in_the_job_is_named():
    assert messages("{{tasks.nope.values.x}}") == [
        "unknown reference {{tasks.nope.values.x}}: there is no task 'nope'"]


def test_an_undefined_job_parameter_is_an_error():
    assert messages("{{job.parameters.p}}") == [
        "unknown reference {{job.parameters.p}}: there is no job parameter 'p'"]


def test_a_bad_time_argument_is_an_error():
    [message] = messages("{{job.start_time.weekday}}")
    assert message.startswith("unknown reference {{job.start_time.weekday}}: 'weekday' is not a time")
    assert "iso_weekday" in message


def test_a_time_without_an_argument_is_an_error():
    [message] = messages("{{job.trigger.time}}")
    assert "job.trigger.time needs one of" in message


def test_backfill_accepts_only_its_date_arguments():
    [message] = messages("{{backfill.hour}}")
    assert "'hour' is not a time argument of backfill" in message


def test_input_outside_a_for_each_is_an_error():
    assert messages("{{input}}") == [
        "unknown reference {{input}}: input is only available inside a for-each task"]
    assert messages("{{input.city}}", in_for_each=True) == []
    assert messages("{{input}}", in_for_each=True) == []


@pytest.mark.parametrize("text, reason", [
    ("{{task.nmae}}", "task has no field 'nmae'"),
    ("{{tasks.extract.valeus.x}}", "tasks.extract has no field 'valeus'"),
    ("{{tasks.extract.values}}", "tasks.extract.values needs a value key"),
    ("{{tasks.extract.output.cols}}", "tasks.extract.output has no field 'cols'"),
    ("{{tasks.extract.run_id.x}}", "tasks.extract.run_id has no field 'x'"),
    ("{{workspace.name}}", "workspace has no field 'name'"),
    ("{{job.trigger.kind}}", "job.trigger has no field 'kind'"),
    ("{{job.id.x}}", "job.id has no field 'x'"),
    ("{{job}}", "job needs one of"),
    ("{{job_id.x}}", "job_id has no field 'x'"),
])
def test_unknown_names_in_every_known_namespace_are_errors(text, reason):
    [message] = messages(text)
    assert message.startswith(f"unknown reference {text}: {reason}")


def test_references_in_namespaces_we_do_not_own_are_left_alone():
    assert messages("{{foo.bar}} {{secrets/scope/key}} {{ env }}") == []


def test_malformed_text_is_not_checked():
    assert messages("{{job.naem") == []


def test_every_bad_reference_in_a_string_gets_its_own_message():
    assert len(messages("{{job.naem}} and {{tasks.nope.run_id}} and {{job.id}}")) == 2
