import pytest

from jobs.spec.settings import Problem
from jobs.spec.triggers import check_triggers, local_path_of, with_trigger_defaults

SCHEDULE = {"quartz_cron_expression": "0 0 6 * * ?", "timezone_id": "Europe/Berlin"}


def problems(data):
    return [(p.path, p.message) for p in check_triggers(data)]


def paths(data):
    return [p.path for p in check_triggers(data)]


@pytest.mark.parametrize("data", [
    {},
    {"schedule": SCHEDULE},
    {"schedule": {**SCHEDULE, "timezone_id": "UTC", "pause_status": "PAUSED"}},
    {"schedule": None, "trigger": None, "continuous": None, "triggers": []},
    {"trigger": {"periodic": {"interval": 4, "unit": "HOURS"}, "pause_status": "UNPAUSED"}},
    {"trigger": {"file_arrival": {"url": "/data/incoming"}}},
    {"trigger": {"file_arrival": {"url": "file:///data/incoming",
                                  "min_time_between_triggers_seconds": 60,
                                  "wait_after_last_change_seconds": 3600}}},
    {"trigger": {"file_arrival": {"url": "file://localhost/data/incoming"}}},
    {"trigger": {"table_update": {"table_names": ["main.sales.orders"],
                                  "condition": "ALL_UPDATED"}}},
    {"trigger": {"table": {"table_names": ["a", "b"]}}},  # deprecated alias
    {"continuous": {}},
    {"continuous": {"pause_status": "PAUSED", "task_retry_mode": "ON_FAILURE",
                    "maintenance_window": {"day_of_week": "SUNDAY", "start_hour": 3}}},
])
def test_valid_blocks_have_no_problems(data):
    assert check_triggers(data) == []


def test_problems_are_problem_objects():
    assert check_triggers({"schedule": {"timezone_id": "UTC"}}) == [
        Problem("schedule.quartz_cron_expression", "is required")]


# --- which blocks ----------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    ({"schedule": SCHEDULE, "continuous": {}},
     [("continuous", "cannot be combined with schedule; a job runs on one of schedule, trigger "
                     "or continuous: remove continuous or schedule")]),
    ({"schedule": SCHEDULE, "trigger": {"periodic": {"interval": 1, "unit": "DAYS"}}},
     [("trigger", "cannot be combined with schedule; a job runs on one of schedule, trigger "
                  "or continuous: remove trigger or schedule")]),
    ({"trigger": {"periodic": {"interval": 1, "unit": "DAYS"}}, "continuous": {}},
     [("continuous", "cannot be combined with trigger; a job runs on one of schedule, trigger "
                     "or continuous: remove continuous or trigger")]),
])
def test_at_most_one_of_schedule_trigger_continuous(data, expected):
    assert problems(data) == expected


def test_all_three_blocks_give_two_problems():
    data = {"schedule": SCHEDULE, "trigger": {"periodic": {"interval": 1, "unit": "DAYS"}},
            "continuous": {}}
    assert paths(data) == ["trigger", "continuous"]


def test_a_triggers_list_is_refused_beside_the_legacy_blocks_naming_them():
    assert problems({"triggers": [{"schedule": SCHEDULE}], "schedule": SCHEDULE, "continuous": {}}) == [
        ("continuous", "cannot be combined with schedule; a job runs on one of schedule, trigger "
                       "or continuous: remove continuous or schedule"),
        ("triggers", "cannot be combined with schedule or continuous: a job with a triggers list has all its "
                     "triggers there; move schedule and continuous into triggers or remove triggers")]


@pytest.mark.parametrize("name", ["schedule", "trigger", "continuous"])
def test_a_block_must_be_an_object(name):
    assert problems({name: "yes"}) == [(name, "must be an object")]


# --- schedule ----------------------------------------------------------------------


@pytest.mark.parametrize("schedule, expected", [
    ({}, [("schedule.quartz_cron_expression", "is required"),
          ("schedule.timezone_id", "is required")]),
    ({**SCHEDULE, "quartz_cron_expression": " "},
     [("schedule.quartz_cron_expression", "must not be empty")]),
    ({**SCHEDULE, "quartz_cron_expression": 6},
     [("schedule.quartz_cron_expression", "must be a string")]),
    ({**SCHEDULE, "quartz_cron_expression": "0 6 * * *"},
     [("schedule.quartz_cron_expression",
       "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), "
       "got 5; Quartz cron starts with seconds, e.g. '0 0 6 * * ?'")]),
    ({**SCHEDULE, "quartz_cron_expression": "0 0 25 * * ?"},
     [("schedule.quartz_cron_expression",
       "hours: '25' is not allowed; use 0-23 in lists, ranges and /steps, or *")]),
    ({**SCHEDULE, "timezone_id": "Mars/Base"},
     [("schedule.timezone_id", "unknown time zone 'Mars/Base'; use an IANA name such as Europe/Berlin")]),
    ({**SCHEDULE, "timezone_id": "Europe"},
     [("schedule.timezone_id", "unknown time zone 'Europe'; use an IANA name such as Europe/Berlin")]),
    ({**SCHEDULE, "timezone_id": "../../etc/passwd"},
     [("schedule.timezone_id",
       "unknown time zone '../../etc/passwd'; use an IANA name such as Europe/Berlin")]),
    ({**SCHEDULE, "timezone_id": ""}, [("schedule.timezone_id", "must not be empty")]),
    ({**SCHEDULE, "pause_status": "STOPPED"},
     [("schedule.pause_status", "must be one of PAUSED, UNPAUSED")]),
])
def test_schedule_problems(schedule, expected):
    assert problems({"schedule": schedule}) == expected


# --- trigger -------------------------------------------------------------------------


@pytest.mark.parametrize("trigger, expected", [
    ({}, [("trigger", "set exactly one of periodic, file_arrival, table_update, job_completion")]),
    ({"pause_status": "PAUSED"}, [("trigger", "set exactly one of periodic, file_arrival, table_update, job_completion")]),
    ({"periodic": {"interval": 1, "unit": "DAYS"}, "table": {"table_names": ["t"]}},
     [("trigger", "set exactly one of periodic, file_arrival, table_update, job_completion (found periodic and table)")]),
    ({"periodic": {"interval": 1, "unit": "DAYS"}, "pause_status": "OFF"},
     [("trigger.pause_status", "must be one of PAUSED, UNPAUSED")]),
    ({"model": {"condition": "MODEL_CREATED"}},
     [("trigger.model", "model triggers are not supported by this server")]),
    ({"job_completion": {"jobs": []}},
     [("trigger.job_completion.jobs", "must be a non-empty list of {job_id, workspace_id}")]),
    ({"job_completion": {"jobs": [{"job_id": 1}]}, "periodic": {"interval": 1, "unit": "DAYS"}},
     [("trigger", "set exactly one of periodic, file_arrival, table_update, job_completion (found periodic and job_completion)")]),
    ({"periodic": []}, [("trigger.periodic", "must be an object")]),
])
def test_trigger_problems(trigger, expected):
    assert problems({"trigger": trigger}) == expected


@pytest.mark.parametrize("periodic, expected", [
    ({}, [("trigger.periodic.interval", "is required"), ("trigger.periodic.unit", "is required")]),
    ({"interval": 0, "unit": "DAYS"}, [("trigger.periodic.interval", "must be between 1 and 36,500")]),
    ({"interval": "two", "unit": "DAYS"}, [("trigger.periodic.interval", "must be an integer")]),
    ({"interval": True, "unit": "DAYS"}, [("trigger.periodic.interval", "must be an integer")]),
    ({"interval": 1, "unit": "SECONDS"},
     [("trigger.periodic.unit", "must be one of MINUTES, HOURS, DAYS, WEEKS")]),
])
def test_periodic_problems(periodic, expected):
    assert problems({"trigger": {"periodic": periodic}}) == expected


LOCAL_ONLY = ("only local directories, volumes and DBFS are supported, not {}: URLs; give an absolute path "
              "such as /Volumes/main/raw/landing or /data/incoming, a dbfs:/ path or a file:///data/incoming URI")


@pytest.mark.parametrize("url, message", [
    ("s3://bucket/landing", LOCAL_ONLY.format("s3")),
    ("abfss://c@acct.dfs.core.windows.net/in", LOCAL_ONLY.format("abfss")),
    ("gs://bucket/in", LOCAL_ONLY.format("gs")),
    ("landing/in", "'landing/in' must be an absolute path (or a file:/// URI) to a local directory"),
    ("file://server/share", "'file://server/share' is not a local file URI; write it as file:///absolute/path"),
    ("file:relative", "'file:relative' is not a local file URI; write it as file:///absolute/path"),
])
def test_file_arrival_url_must_be_a_local_directory(url, message):
    assert problems({"trigger": {"file_arrival": {"url": url}}}) == [
        ("trigger.file_arrival.url", message)]


@pytest.mark.parametrize("url", ["dbfs:/mnt/in", "/Volumes/main/raw/landing", "/Workspace/Shared/in"])
def test_file_arrival_url_may_be_a_volume_or_dbfs_path(url):
    assert problems({"trigger": {"file_arrival": {"url": url}}}) == []


def test_file_arrival_url_is_required():
    assert problems({"trigger": {"file_arrival": {}}}) == [("trigger.file_arrival.url", "is required")]


@pytest.mark.parametrize("kind", ["file_arrival", "table_update", "table"])
@pytest.mark.parametrize("timer", ["min_time_between_triggers_seconds", "wait_after_last_change_seconds"])
def test_timers_are_at_least_60_seconds_or_0_for_none(kind, timer):
    block = {"url": "/in"} if kind == "file_arrival" else {"table_names": ["t"]}
    at = f"trigger.{kind}.{timer}"
    too_short = "must be at least 60 seconds (the Databricks minimum); leave it out or set 0 for no wait"
    assert problems({"trigger": {kind: {**block, timer: 0}}}) == []
    assert problems({"trigger": {kind: {**block, timer: 1}}}) == [(at, too_short)]
    assert problems({"trigger": {kind: {**block, timer: 59}}}) == [(at, too_short)]
    assert problems({"trigger": {kind: {**block, timer: -1}}}) == [(at, "must be between 0 and 2,147,483,647")]
    assert problems({"trigger": {kind: {**block, timer: 1.5}}}) == [(at, "must be an integer")]
    assert problems({"trigger": {kind: {**block, timer: 60}}}) == []


@pytest.mark.parametrize("kind", ["table_update", "table"])
@pytest.mark.parametrize("block, expected", [
    ({}, [(".table_names", "is required")]),
    ({"table_names": []}, [(".table_names", "must be a non-empty list of table names")]),
    ({"table_names": "main.s.t"}, [(".table_names", "must be a non-empty list of table names")]),
    ({"table_names": [f"t{i}" for i in range(11)]},
     [(".table_names", "at most 10 tables may be watched; this lists 11")]),
    ({"table_names": ["a", "", 7, "a"]},
     [(".table_names[1]", "must be a non-empty table name"),
      (".table_names[2]", "must be a non-empty table name"),
      (".table_names[3]", "'a' is listed more than once")]),
    ({"table_names": ["a"], "condition": "SOME_UPDATED"},
     [(".condition", "must be one of ANY_UPDATED, ALL_UPDATED")]),
])
def test_table_update_problems(kind, block, expected):
    assert problems({"trigger": {kind: block}}) == [
        (f"trigger.{kind}{suffix}", message) for suffix, message in expected]


# --- continuous ------------------------------------------------------------------------


def test_continuous_problems():
    assert problems({"continuous": {"pause_status": "NO", "task_retry_mode": "ALWAYS",
                                    "maintenance_window": "sunday"}}) == [
        ("continuous.pause_status", "must be one of PAUSED, UNPAUSED"),
        ("continuous.task_retry_mode", "must be one of NEVER, ON_FAILURE"),
        ("continuous.maintenance_window", "must be an object"),
    ]


# --- defaults and helpers -------------------------------------------------------------


def test_defaults_fill_pause_status_and_leave_the_input_alone():
    settings = {"name": "n", "schedule": dict(SCHEDULE), "trigger": {"pause_status": "PAUSED"},
                "continuous": None}
    filled = with_trigger_defaults(settings)
    assert filled["schedule"]["pause_status"] == "UNPAUSED"
    assert filled["trigger"]["pause_status"] == "PAUSED"
    assert filled["continuous"] is None and filled["name"] == "n"
    assert "pause_status" not in settings["schedule"]
    assert with_trigger_defaults({"continuous": {}}) == {"continuous": {"pause_status": "UNPAUSED"}}


@pytest.mark.parametrize("url, path", [
    ("/data/in", "/data/in"),
    ("file:///data/in", "/data/in"),
    ("file://localhost/data/my%20files", "/data/my files"),
])
def test_local_path_of(url, path):
    assert local_path_of(url) == path
