"""Check the `schedule`, `trigger`, `continuous` and `triggers` blocks of JobSettings
(reference §1.4-1.6).

`check_triggers` returns every problem with its field path; `with_trigger_defaults` fills in
what Databricks reads back; `trigger_blocks` lists what the clock watches. Pure: whether a
file-arrival directory or a monitored job exists is checked by the caller when the job is saved.

Decisions:
- A job has at most one of `schedule`, `trigger`, `continuous`: Databricks rejects continuous
  with either of the others, and the UI offers one trigger type per job. A null block is absent.
- `triggers` (the multi-trigger list) is refused together with any of those three, as the SDK
  documents; each entry sets exactly one of schedule, periodic, continuous, file_arrival,
  table_update, job_completion, plus pause_status and an optional sql_condition. At most
  MAX_TRIGGERS entries (Databricks documents no limit; ten keeps one job's clock work bounded,
  like the ten tables or jobs one trigger may watch), and at most one continuous entry: a
  continuous trigger already keeps one run going at all times, a second would only race the
  first for the same restarts and backoff.
- `model` triggers are rejected as not supported by this server rather than silently ignored.
- `job_completion.jobs`: 1 to 10 distinct job ids (a number or its decimal string; stored as
  the string the SDK reads); `workspace_id` may be given and is kept, but not checked: this
  server is one workspace, and a job moved from Databricks keeps its workspace ids.
- `timezone_id` must be an IANA name that zoneinfo knows ("UTC" included).
- `table` is the deprecated name of `table_update` and is checked the same way.
- The two file-arrival/table-update timers must be at least 60 seconds when set, the minimum
  the SDK documents; leaving them out, or 0 (proto3's default, which Databricks accepts and
  clients that send every field write), means no wait.
- `table_names`: 1 to 10 distinct non-empty names; the `catalog.schema.table` form is not
  enforced, since this server has no Unity Catalog.
- `file_arrival.url` must be a local directory: an absolute path (``/Volumes/...`` too), a
  ``dbfs:/`` path or a file:/// URI.
- `continuous.maintenance_window` is accepted and ignored: this server has no maintenance.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from jobs.spec.checker import INT64_MAX, Checker, Problem
from jobs.spec.cron import CronInvalid, parse_quartz
from jobs.spec.sql_condition import check_sql_condition

PAUSE_STATUSES = ("PAUSED", "UNPAUSED")
PERIODIC_UNITS = ("MINUTES", "HOURS", "DAYS", "WEEKS")
TABLE_CONDITIONS = ("ANY_UPDATED", "ALL_UPDATED")
TASK_RETRY_MODES = ("NEVER", "ON_FAILURE")
SUPPORTED_TRIGGERS = ("periodic", "file_arrival", "table_update", "table", "job_completion")
UNSUPPORTED_TRIGGERS = ("model",)
# The kinds of a triggers[] entry (TriggerConfiguration), in the SDK's words.
FORM_TRIGGERS = ("periodic", "file_arrival", "table_update", "table", "job_completion")
ENTRY_KINDS = ("schedule", "periodic", "continuous", "file_arrival", "table_update", "job_completion")
IF_STATUSES = ("SUCCESS", "FAILED", "DONE")
MAX_MONITORED_JOBS = 10
MAX_TRIGGERS = 10
TIMERS = ("min_time_between_triggers_seconds", "wait_after_last_change_seconds")
MIN_TIMER_SECONDS = 60
MAX_TABLE_NAMES = 10
EXCLUSIVE_BLOCKS = ("schedule", "trigger", "continuous")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_DECIMAL_ID = re.compile(r"[0-9]{1,19}")


def check_triggers(data: dict) -> list[Problem]:
    """Problems in the schedule, trigger and continuous blocks of job settings `data`."""
    c = Checker()
    present = [name for name in EXCLUSIVE_BLOCKS if data.get(name) is not None]
    for name in present[1:]:
        c.add(name, f"cannot be combined with {present[0]}; a job runs on one of schedule, "
                    f"trigger or continuous: remove {name} or {present[0]}")
    if data.get("triggers"):  # an empty list asks for nothing
        if present:
            c.add("triggers", f"cannot be combined with {' or '.join(present)}: a job with a triggers list "
                              f"has all its triggers there; move {' and '.join(present)} into triggers or "
                              "remove triggers")
        _check_trigger_list(c, data["triggers"])
    _check_schedule(c, data)
    _check_trigger(c, data)
    _check_continuous(c, data)
    return c.problems


def with_trigger_defaults(settings: dict) -> dict:
    """A copy of `settings` whose schedule, trigger, continuous blocks and triggers[] entries have
    a pause_status, and whose monitored job ids are strings (the SDK's type); a null triggers
    list is left out, as a null block is."""
    result = copy.deepcopy(settings)
    for name in EXCLUSIVE_BLOCKS:
        if isinstance(result.get(name), dict):
            result[name].setdefault("pause_status", "UNPAUSED")
    if "triggers" in result and result["triggers"] is None:
        del result["triggers"]
    entries = [entry for entry in result.get("triggers") or [] if isinstance(entry, dict)]
    for entry in entries:
        entry.setdefault("pause_status", "UNPAUSED")
    for block in [result.get("trigger")] + entries:
        completion = block.get("job_completion") if isinstance(block, dict) else None
        for monitored in (completion or {}).get("jobs") or []:
            if monitored_job_id(monitored.get("job_id")) is not None:
                monitored["job_id"] = str(monitored_job_id(monitored["job_id"]))
            if isinstance(monitored.get("workspace_id"), int):
                monitored["workspace_id"] = str(monitored["workspace_id"])
    return result


def local_path_of(url: str) -> str:
    """The directory a valid file_arrival.url names: the path itself or a file:/// URI's path."""
    return unquote(urlsplit(url).path) if url.startswith("file:") else url


# --- the blocks ------------------------------------------------------------------


def _check_schedule(c: Checker, data: dict) -> None:
    schedule = _block(c, data, "schedule")
    if schedule is None:
        return
    _check_cron(c, schedule, "schedule")
    c.choice(schedule, "schedule", "pause_status", PAUSE_STATUSES)
    _check_gate(c, schedule, "schedule")


def _check_cron(c: Checker, schedule: dict, path: str) -> None:
    expression = c.string(schedule, path, "quartz_cron_expression", required=True, non_empty=True)
    if expression is not None:
        try:
            parse_quartz(expression)
        except CronInvalid as invalid:
            c.add(f"{path}.quartz_cron_expression", str(invalid))
    zone = c.string(schedule, path, "timezone_id", required=True, non_empty=True)
    if zone is not None and not _is_time_zone(zone):
        c.add(f"{path}.timezone_id", f"unknown time zone '{zone}'; use an IANA name such as Europe/Berlin")


def _check_trigger(c: Checker, data: dict) -> None:
    trigger = _block(c, data, "trigger")
    if trigger is None:
        return
    kinds = [name for name in SUPPORTED_TRIGGERS + UNSUPPORTED_TRIGGERS if name in trigger]
    if len(kinds) != 1:
        found = f" (found {' and '.join(kinds)})" if kinds else ""
        c.add("trigger", f"set exactly one of periodic, file_arrival, table_update, job_completion{found}")
    for kind in kinds:
        if kind in UNSUPPORTED_TRIGGERS:
            c.add(f"trigger.{kind}", f"{kind} triggers are not supported by this server")
        elif (block := c.obj(trigger, "trigger", kind)) is not None:
            _CHECKS[kind](c, block, f"trigger.{kind}")
    c.choice(trigger, "trigger", "pause_status", PAUSE_STATUSES)
    _check_gate(c, trigger, "trigger")


def _check_trigger_list(c: Checker, entries) -> None:
    if not isinstance(entries, list):
        c.add("triggers", "must be a list of trigger configurations")
        return
    if len(entries) > MAX_TRIGGERS:
        c.add("triggers", f"a job may have at most {MAX_TRIGGERS} triggers; this lists {len(entries)}")
        return
    continuous = []
    for i, entry in enumerate(entries):
        path = f"triggers[{i}]"
        if not isinstance(entry, dict):
            c.add(path, "must be an object")
            continue
        kinds = [name for name in ENTRY_KINDS + UNSUPPORTED_TRIGGERS if entry.get(name) is not None]
        if len(kinds) != 1:
            found = f" (found {' and '.join(kinds)})" if kinds else ""
            c.add(path, f"set exactly one of {', '.join(ENTRY_KINDS)}{found}")
        for kind in kinds:
            if kind in UNSUPPORTED_TRIGGERS:
                c.add(f"{path}.{kind}", f"{kind} triggers are not supported by this server")
            elif (block := c.obj(entry, path, kind)) is not None:
                _ENTRY_CHECKS[kind](c, block, f"{path}.{kind}")
        if "continuous" in kinds:
            continuous.append(i)
        c.choice(entry, path, "pause_status", PAUSE_STATUSES)
        _check_gate(c, entry, path)
    for i in continuous[1:]:
        c.add(f"triggers[{i}].continuous", f"a job has at most one continuous trigger (triggers[{continuous[0]}] "
                                           "is one): it already keeps one run going at all times")


def _check_continuous(c: Checker, data: dict) -> None:
    continuous = _block(c, data, "continuous")
    if continuous is None:
        return
    c.choice(continuous, "continuous", "pause_status", PAUSE_STATUSES)
    _check_continuous_block(c, continuous, "continuous")


def _check_continuous_block(c: Checker, continuous: dict, path: str) -> None:
    c.choice(continuous, path, "task_retry_mode", TASK_RETRY_MODES)
    c.obj(continuous, path, "maintenance_window")


def _block(c: Checker, data: dict, name: str) -> dict | None:
    return c.obj(data, "", name) if data.get(name) is not None else None


def _check_gate(c: Checker, block: dict, path: str) -> None:
    if block.get("sql_condition") is not None:
        check_sql_condition(c, block["sql_condition"], f"{path}.sql_condition")


def _is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found, not a key, a directory like "Europe"
        return False
    return True


# --- trigger types ---------------------------------------------------------------


# A period past a century would never fire, and its date arithmetic would overflow.
MAX_PERIODIC_INTERVAL = {"MINUTES": 100 * 365 * 24 * 60, "HOURS": 100 * 365 * 24, "DAYS": 100 * 365, "WEEKS": 100 * 52}


def _check_periodic(c: Checker, periodic: dict, path: str) -> None:
    high = MAX_PERIODIC_INTERVAL.get(periodic.get("unit"), MAX_PERIODIC_INTERVAL["WEEKS"])
    c.integer(periodic, path, "interval", low=1, high=high, required=True)
    c.choice(periodic, path, "unit", PERIODIC_UNITS, required=True)


def _check_file_arrival(c: Checker, file_arrival: dict, path: str) -> None:
    url = c.string(file_arrival, path, "url", required=True, non_empty=True)
    problem = _local_directory_problem(url) if url is not None else None
    if problem:
        c.add(f"{path}.url", problem)
    _check_timers(c, file_arrival, path)


def _check_table_update(c: Checker, table_update: dict, path: str) -> None:
    _check_table_names(c, table_update, path)
    c.choice(table_update, path, "condition", TABLE_CONDITIONS)
    _check_timers(c, table_update, path)


def _check_table_names(c: Checker, table_update: dict, path: str) -> None:
    names = table_update.get("table_names")
    at = f"{path}.table_names"
    if "table_names" not in table_update:
        c.add(at, "is required")
    elif not isinstance(names, list) or not names:
        c.add(at, "must be a non-empty list of table names")
    elif len(names) > MAX_TABLE_NAMES:
        c.add(at, f"at most {MAX_TABLE_NAMES} tables may be watched; this lists {len(names)}")
    else:
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                c.add(f"{at}[{i}]", "must be a non-empty table name")
            elif name in names[:i]:
                c.add(f"{at}[{i}]", f"'{name}' is listed more than once")


def _check_job_completion(c: Checker, completion: dict, path: str) -> None:
    c.choice(completion, path, "if_status", IF_STATUSES)
    monitored = completion.get("jobs")
    at = f"{path}.jobs"
    if "jobs" not in completion:
        c.add(at, "is required")
        return
    if not isinstance(monitored, list) or not monitored:
        c.add(at, "must be a non-empty list of {job_id, workspace_id}")
        return
    if len(monitored) > MAX_MONITORED_JOBS:
        c.add(at, f"at most {MAX_MONITORED_JOBS} jobs may be monitored; this lists {len(monitored)}")
        return
    seen = {}
    for i, job in enumerate(monitored):
        where = f"{at}[{i}]"
        if not isinstance(job, dict):
            c.add(where, "must be an object with job_id and workspace_id")
            continue
        job_id = monitored_job_id(job.get("job_id"))
        if "job_id" not in job:
            c.add(f"{where}.job_id", "is required")
        elif job_id is None:
            c.add(f"{where}.job_id", "must be a job id: a positive integer or its decimal string")
        elif job_id in seen:
            c.add(f"{where}.job_id", f"job {job_id} is already monitored by {at}[{seen[job_id]}]")
        else:
            seen[job_id] = i
        workspace = job.get("workspace_id")
        if workspace is not None and (isinstance(workspace, bool) or not isinstance(workspace, (str, int))):
            c.add(f"{where}.workspace_id", "must be a string")


def monitored_job_id(value) -> int | None:
    """The job id a job_completion entry names (a number or its decimal string), or None."""
    if isinstance(value, str) and _DECIMAL_ID.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64_MAX:
        return value
    return None


def _check_timers(c: Checker, block: dict, path: str) -> None:
    for timer in TIMERS:
        value = c.integer(block, path, timer)
        if value is not None and 0 < value < MIN_TIMER_SECONDS:
            c.add(f"{path}.{timer}", f"must be at least {MIN_TIMER_SECONDS} seconds "
                                     "(the Databricks minimum); leave it out or set 0 for no wait")


def _local_directory_problem(url: str) -> str | None:
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return f"'{url}' is not a local file URI; write it as file:///absolute/path"
        return None
    if url.startswith("dbfs:/"):
        return None
    if _URI_SCHEME.match(url):
        scheme = url.split(":", 1)[0]
        return (f"only local directories, volumes and DBFS are supported, not {scheme}: URLs; give an "
                "absolute path such as /Volumes/main/raw/landing or /data/incoming, a dbfs:/ path "
                "or a file:///data/incoming URI")
    if not url.startswith("/"):
        return f"'{url}' must be an absolute path (or a file:/// URI) to a local directory"
    return None


_CHECKS: dict[str, Callable[[Checker, dict, str], None]] = {
    "periodic": _check_periodic,
    "file_arrival": _check_file_arrival,
    "table_update": _check_table_update,
    "table": _check_table_update,
    "job_completion": _check_job_completion,
}
_ENTRY_CHECKS: dict[str, Callable[[Checker, dict, str], None]] = {
    **_CHECKS,
    "schedule": _check_cron,
    "continuous": _check_continuous_block,
}


def trigger_block(settings: dict, kinds=FORM_TRIGGERS) -> tuple[str, dict, bool] | None:
    """(kind, the block without pause_status, paused) of a job's schedule, trigger or continuous
    setting, or None. Kinds are schedule, periodic, file_arrival, table_update (also for the
    older "table") and continuous; and job_completion when `kinds` has it (the job form has no
    fields for it)."""
    if settings.get("continuous"):
        kind, block = "continuous", settings["continuous"]
    elif settings.get("schedule"):
        kind, block = "schedule", settings["schedule"]
    elif settings.get("trigger"):
        block = settings["trigger"]
        found = [name for name in kinds if block.get(name)]
        if not found:
            return None
        kind = "table_update" if found[0] == "table" else found[0]
    else:
        return None
    config = {key: value for key, value in block.items() if key != "pause_status"}
    return kind, config, block.get("pause_status") == "PAUSED"


def trigger_objects(settings: dict) -> list[tuple[str, dict]]:
    """(path, block) of the trigger setting and of each triggers[] entry that is an object: where
    a trigger type's block (file_arrival, job_completion, ...) may sit."""
    entries = settings.get("triggers") if isinstance(settings.get("triggers"), list) else []
    blocks = [("trigger", settings.get("trigger"))] + [(f"triggers[{i}]", e) for i, e in enumerate(entries)]
    return [(path, block) for path, block in blocks if isinstance(block, dict)]


def trigger_blocks(settings: dict) -> list[tuple[int, str, dict, bool]]:
    """(position, kind, config, paused) of every trigger of a job's settings: position 0 for the
    schedule, trigger or continuous setting, i for triggers[i]. A config has the shape
    trigger_block gives the same kind (a schedule's cron fields at its top, {kind: block} for
    the trigger types, a continuous block's own fields), with the entry's sql_condition."""
    entries = settings.get("triggers")
    if not entries:
        found = trigger_block(settings, SUPPORTED_TRIGGERS)
        return [(0, *found)] if found else []
    blocks = []
    for i, entry in enumerate(entries):
        kind = next((name for name in ENTRY_KINDS if entry.get(name) is not None), None)
        if kind is None:
            continue
        if kind in ("schedule", "continuous"):
            config = dict(entry[kind])
        else:
            config = {kind: entry[kind]}
        if entry.get("sql_condition") is not None:
            config["sql_condition"] = entry["sql_condition"]
        blocks.append((i, kind, config, entry.get("pause_status") == "PAUSED"))
    return blocks
