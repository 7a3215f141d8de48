from datetime import datetime, timedelta, timezone

import pytest

from jobs.spec.refs import Reference, ReferenceContext, find_references, resolve

UTC = timezone.utc
# Friday 15 March 2024, 09:05:07.250 UTC
FRIDAY_MORNING = datetime(2024, 3, 15, 9, 5, 7, 250000, tzinfo=UTC)
# 01:00 on Sunday in UTC+2 is still Saturday evening in UTC
SATURDAY_NIGHT_UTC = datetime(2024, 3, 17, 1, 0, tzinfo=timezone(timedelta(hours=2)))


def nightly_context(**overrides):
    values = dict(
        job_id=42, job_name="nightly etl", run_id=1001, repair_count=2,
        start_time=FRIDAY_MORNING, trigger_time=SATURDAY_NIGHT_UTC, trigger_type="periodic",
        job_parameters={"env": "prod", "my-param": "dashed"},
        task_name="load", task_run_id=2002, task_execution_count=3,
        task_notebook_path="/Repos/etl/load",
        tasks={
            "extract": {"run_id": 2001, "result_state": "SUCCESS", "error_code": None,
                        "execution_count": 1,
                        "values": {"rows": 17, "ok": True, "meta": {"source": "s3"}}},
            "count_sql": {"output": {"rows": [{"n": 5, "day": "mon"}, {"n": 6, "day": "tue"}]}},
        },
        workspace_id=7001, workspace_url="https://lakeflow.example.com",
        file_arrival_location="/Volumes/raw/in/file.csv",
        table_update={
            "updated_tables": ["main.sales.orders"],
            "tables": {"main.sales.orders": {"commit_timestamp": FRIDAY_MORNING, "version": 12}},
        },
        backfill_time=datetime(2024, 1, 31, tzinfo=UTC),
    )
    values.update(overrides)
    return ReferenceContext(**values)


def test_find_references_reports_text_path_and_span():
    text = "run {{ job.id }} now"
    assert find_references(text) == [Reference("{{ job.id }}", ("job", "id"), 4, 16)]


def test_a_backticked_segment_becomes_one_segment_without_backticks():
    [ref] = find_references("{{job.parameters.`my-param`}}")
    assert ref.path == ("job", "parameters", "my-param")


def test_malformed_references_are_not_references():
    for text in ["{{job.id", "{{}}", "{{ }}", "{{job-id}}", "{{job..id}}", "{{.job}}",
                 "{ {job.id}}", "{{secrets/scope/key}}", "{{job.`}}"]:
        assert find_references(text) == [], text


@pytest.mark.parametrize("reference, expected", [
    ("{{job.id}}", "42"),
    ("{{job.name}}", "nightly etl"),
    ("{{job.run_id}}", "1001"),
    ("{{job.repair_count}}", "2"),
    ("{{job.trigger.type}}", "periodic"),
    ("{{job.trigger.file_arrival.location}}", "/Volumes/raw/in/file.csv"),
    ("{{job.trigger.table_update.updated_tables}}", '["main.sales.orders"]'),
    ("{{job.trigger.table_update.main.sales.orders.version}}", "12"),
    ("{{job.trigger.table_update.`main.sales.orders`.commit_timestamp.iso_date}}", "2024-03-15"),
    ("{{job.parameters.env}}", "prod"),
    ("{{job.parameters.`my-param`}}", "dashed"),
    ("{{task.name}}", "load"),
    ("{{task.run_id}}", "2002"),
    ("{{task.execution_count}}", "3"),
    ("{{task.notebook_path}}", "/Repos/etl/load"),
    ("{{tasks.extract.run_id}}", "2001"),
    ("{{tasks.extract.result_state}}", "SUCCESS"),
    ("{{tasks.extract.error_code}}", ""),
    ("{{tasks.extract.execution_count}}", "1"),
    ("{{tasks.extract.values.rows}}", "17"),
    ("{{tasks.extract.values.ok}}", "true"),
    ("{{tasks.extract.values.meta}}", '{"source":"s3"}'),
    ("{{tasks.count_sql.output.rows}}", '[{"n":5,"day":"mon"},{"n":6,"day":"tue"}]'),
    ("{{tasks.count_sql.output.first_row}}", '{"n":5,"day":"mon"}'),
    ("{{tasks.count_sql.output.first_row.day}}", "mon"),
    ("{{workspace.id}}", "7001"),
    ("{{workspace.url}}", "https://lakeflow.example.com"),
    ("{{backfill.iso_date}}", "2024-01-31"),
    ("{{backfill.month}}", "1"),
])
def test_every_namespace_resolves(reference, expected):
    assert resolve(reference, nightly_context()) == expected


@pytest.mark.parametrize("arg, expected", [
    ("iso_weekday", "5"),
    ("is_weekday", "true"),
    ("iso_date", "2024-03-15"),
    ("iso_datetime", "2024-03-15T09:05:07"),
    ("year", "2024"),
    ("month", "3"),
    ("day", "15"),
    ("hour", "9"),
    ("minute", "5"),
    ("second", "7"),
    ("timestamp_ms", "1710493507250"),
])
def test_every_start_time_argument_resolves_in_utc(arg, expected):
    assert resolve(f"{{{{job.start_time.{arg}}}}}", nightly_context()) == expected


def test_trigger_time_is_converted_to_utc_before_formatting():
    ctx = nightly_context()
    assert resolve("{{job.trigger.time.iso_datetime}}", ctx) == "2024-03-16T23:00:00"
    assert resolve("{{job.trigger.time.iso_weekday}}", ctx) == "6"
    assert resolve("{{job.trigger.time.is_weekday}}", ctx) == "false"


@pytest.mark.parametrize("reference, expected", [
    ("{{job_id}}", "42"),
    ("{{run_id}}", "2002"),  # the task run, as in Databricks multi-task jobs
    ("{{parent_run_id}}", "1001"),
    ("{{start_date}}", "2024-03-15"),
    ("{{start_time}}", "1710493507250"),
    ("{{task_retry_count}}", "2"),
    ("{{task_key}}", "load"),
])
def test_legacy_names_resolve(reference, expected):
    assert resolve(reference, nightly_context()) == expected


def test_the_for_each_input_and_its_nested_fields_resolve():
    element = {"city": "Oslo", "geo": {"lat": 59.9}, "tags": ["a", "b"], "gone": None}
    ctx = nightly_context(input=element)
    assert resolve("{{input.city}}", ctx) == "Oslo"
    assert resolve("{{input.geo.lat}}", ctx) == "59.9"
    assert resolve("{{input.tags}}", ctx) == '["a","b"]'
    assert resolve("{{input.gone}}", ctx) == ""
    assert resolve("{{input}}", ctx) == '{"city":"Oslo","geo":{"lat":59.9},"tags":["a","b"],"gone":null}'
    assert resolve("{{input}}", nightly_context(input="plain")) == "plain"
    assert resolve("{{input}}", nightly_context(input=False)) == "false"


def test_input_outside_a_for_each_stays_literal():
    assert resolve("{{input}} and {{input.city}}", nightly_context()) == "{{input}} and {{input.city}}"


def test_unknown_and_unavailable_references_stay_as_written():
    ctx = nightly_context(trigger_type=None)
    text = "{{ job.naem }} {{job.parameters.nope}} {{tasks.ghost.run_id}} {{job.trigger.type}} {{foo.bar}}"
    assert resolve(text, ctx) == text


def test_missing_facts_leave_references_literal_in_an_empty_context():
    text = "{{job.id}}-{{job.start_time.iso_date}}-{{tasks.a.values.x}}"
    assert resolve(text, ReferenceContext()) == text


def test_malformed_braces_are_left_alone_while_good_references_around_them_resolve():
    text = "{{job.id {{job.name}} {{ }} {{job.id}}"
    assert resolve(text, nightly_context()) == "{{job.id nightly etl {{ }} 42"


def test_spaces_inside_the_braces_are_allowed():
    assert resolve("id={{   job.id  }}", nightly_context()) == "id=42"


def test_text_without_references_is_returned_unchanged():
    assert resolve("SELECT 1", nightly_context()) == "SELECT 1"
