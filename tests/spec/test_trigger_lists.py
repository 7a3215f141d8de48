"""The triggers list (JobSettings.triggers) and job-completion triggers, as the spec checks them
and as the clock reads them (trigger_blocks)."""

import pytest

from jobs.spec.triggers import check_triggers, trigger_blocks, with_trigger_defaults

CRON = {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "UTC"}
UPSTREAM = {"jobs": [{"job_id": "12", "workspace_id": "0"}, {"job_id": 13, "workspace_id": 0}]}


def problems(data):
    return [(p.path, p.message) for p in check_triggers(data)]


def test_a_list_of_each_kind_with_pause_status_is_valid():
    data = {"triggers": [
        {"schedule": CRON, "pause_status": "PAUSED"},
        {"periodic": {"interval": 2, "unit": "HOURS"}},
        {"continuous": {"task_retry_mode": "ON_FAILURE"}},
        {"file_arrival": {"url": "/data/in"}},
        {"table_update": {"table_names": ["main.s.t"]}},
        {"job_completion": {**UPSTREAM, "if_status": "DONE"}, "pause_status": "UNPAUSED"},
    ]}
    assert problems(data) == []


def test_each_entry_sets_exactly_one_kind_and_model_stays_refused():
    assert problems({"triggers": [{}, {"schedule": CRON, "periodic": {"interval": 1, "unit": "DAYS"}},
                                  {"model": {"condition": "MODEL_CREATED"}}, "daily"]}) == [
        ("triggers[0]", "set exactly one of schedule, periodic, continuous, file_arrival, table_update, "
                        "job_completion"),
        ("triggers[1]", "set exactly one of schedule, periodic, continuous, file_arrival, table_update, "
                        "job_completion (found schedule and periodic)"),
        ("triggers[2].model", "model triggers are not supported by this server"),
        ("triggers[3]", "must be an object"),
    ]


def test_entries_are_checked_as_their_kind_with_their_path():
    assert problems({"triggers": [{"schedule": {"quartz_cron_expression": "0 6 * * *", "timezone_id": "Mars"}},
                                  {"file_arrival": {"url": "s3://b/in"}, "pause_status": "OFF"},
                                  {"table_update": {"table_names": []}}]}) == [
        ("triggers[0].schedule.quartz_cron_expression",
         "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), got 5; "
         "Quartz cron starts with seconds, e.g. '0 0 6 * * ?'"),
        ("triggers[0].schedule.timezone_id", "unknown time zone 'Mars'; use an IANA name such as Europe/Berlin"),
        ("triggers[1].file_arrival.url",
         "only local directories, volumes and DBFS are supported, not s3: URLs; give an absolute path such as "
         "/Volumes/main/raw/landing or /data/incoming, a dbfs:/ path or a file:///data/incoming URI"),
        ("triggers[1].pause_status", "must be one of PAUSED, UNPAUSED"),
        ("triggers[2].table_update.table_names", "must be a non-empty list of table names"),
    ]


def test_a_second_continuous_trigger_is_refused_saying_why():
    assert problems({"triggers": [{"continuous": {}}, {"schedule": CRON}, {"continuous": {}}]}) == [
        ("triggers[2].continuous", "a job has at most one continuous trigger (triggers[0] is one): it already "
                                   "keeps one run going at all times")]


def test_the_list_is_bounded_and_must_be_a_list():
    assert problems({"triggers": [{"schedule": CRON}] * 11}) == [
        ("triggers", "a job may have at most 10 triggers; this lists 11")]
    assert problems({"triggers": {"schedule": CRON}}) == [("triggers", "must be a list of trigger configurations")]


@pytest.mark.parametrize("block, expected", [
    ({}, [(".jobs", "is required")]),
    ({"jobs": "12"}, [(".jobs", "must be a non-empty list of {job_id, workspace_id}")]),
    ({"jobs": [{"job_id": i} for i in range(1, 12)]}, [(".jobs", "at most 10 jobs may be monitored; this lists 11")]),
    ({"jobs": [{"workspace_id": "0"}, {"job_id": 0}, {"job_id": "x1"}, {"job_id": True}, 7]},
     [(".jobs[0].job_id", "is required"),
      (".jobs[1].job_id", "must be a job id: a positive integer or its decimal string"),
      (".jobs[2].job_id", "must be a job id: a positive integer or its decimal string"),
      (".jobs[3].job_id", "must be a job id: a positive integer or its decimal string"),
      (".jobs[4]", "must be an object with job_id and workspace_id")]),
    ({"jobs": [{"job_id": 12}, {"job_id": "12"}]}, [(".jobs[1].job_id", "job 12 is already monitored by "
                                                                        "trigger.job_completion.jobs[0]")]),
    ({"jobs": [{"job_id": 12, "workspace_id": ["w"]}]}, [(".jobs[0].workspace_id", "must be a string")]),
    ({"jobs": [{"job_id": 12}], "if_status": "SUCCEEDED"}, [(".if_status", "must be one of SUCCESS, FAILED, DONE")]),
])
def test_job_completion_problems(block, expected):
    assert problems({"trigger": {"job_completion": block}}) == [
        (f"trigger.job_completion{suffix}", message) for suffix, message in expected]


def test_the_sql_condition_of_every_block_is_checked_at_its_path(monkeypatch):
    seen = []
    monkeypatch.setattr("jobs.spec.triggers.check_sql_condition",
                        lambda c, block, path: seen.append((path, block)) or c.add(path, "checked"))
    gate = {"warehouse_id": "default", "query": "select 1"}
    assert problems({"schedule": {**CRON, "sql_condition": gate}}) == [("schedule.sql_condition", "checked")]
    assert problems({"trigger": {"job_completion": UPSTREAM, "sql_condition": gate}}) == [
        ("trigger.sql_condition", "checked")]
    assert problems({"triggers": [{"schedule": CRON}, {"periodic": {"interval": 1, "unit": "DAYS"},
                                                       "sql_condition": gate}]}) == [
        ("triggers[1].sql_condition", "checked")]
    assert [block for _, block in seen] == [gate, gate, gate]


def test_defaults_fill_pause_status_and_write_monitored_ids_as_strings():
    settings = with_trigger_defaults({"triggers": [{"job_completion": UPSTREAM}], "trigger": None})
    assert settings["triggers"] == [{"pause_status": "UNPAUSED", "job_completion": {"jobs": [
        {"job_id": "12", "workspace_id": "0"}, {"job_id": "13", "workspace_id": "0"}]}}]
    assert with_trigger_defaults({"triggers": None}) == {}
    assert with_trigger_defaults({"trigger": {"job_completion": {"jobs": [{"job_id": 7}]}}})["trigger"] == {
        "job_completion": {"jobs": [{"job_id": "7"}]}, "pause_status": "UNPAUSED"}


def test_trigger_blocks_give_each_trigger_its_position_and_config():
    gate = {"warehouse_id": "default", "query": "select 1"}
    assert trigger_blocks({"triggers": [
        {"schedule": CRON, "pause_status": "UNPAUSED", "sql_condition": gate},
        {"file_arrival": {"url": "/in"}, "pause_status": "PAUSED"},
        {"continuous": {"task_retry_mode": "NEVER"}},
        {"job_completion": UPSTREAM},
    ]}) == [
        (0, "schedule", {**CRON, "sql_condition": gate}, False),
        (1, "file_arrival", {"file_arrival": {"url": "/in"}}, True),
        (2, "continuous", {"task_retry_mode": "NEVER"}, False),
        (3, "job_completion", {"job_completion": UPSTREAM}, False),
    ]
    assert trigger_blocks({"trigger": {"job_completion": UPSTREAM, "pause_status": "PAUSED"}}) == [
        (0, "job_completion", {"job_completion": UPSTREAM}, True)]
    assert trigger_blocks({"schedule": {**CRON, "pause_status": "UNPAUSED"}}) == [(0, "schedule", CRON, False)]
    assert trigger_blocks({"triggers": []}) == []
