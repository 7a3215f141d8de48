"""Check the `schedule`, `trigger` and `continuous` blocks of JobSettings (reference §1.4-1.6).

`check_triggers` returns every problem with its field path; `with_trigger_defaults` fills in
what Databricks reads back. Pure: whether a file-arrival directory exists is checked by the
caller when the job is saved.

Decisions:
- A job has at most one of `schedule`, `trigger`, `continuous`: Databricks rejects continuous
  with either of the others, and the UI offers one trigger type per job. A null block is absent.
- `triggers` (multi-trigger preview), `model` and `job_completion` triggers and `sql_condition`
  gates are rejected as not supported by this server rather than silently ignored.
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

from jobs.spec.checker import Checker, Problem
from jobs.spec.cron import CronInvalid, parse_quartz

PAUSE_STATUSES = ("PAUSED", "UNPAUSED")
PERIODIC_UNITS = ("MINUTES", "HOURS", "DAYS", "WEEKS")
TABLE_CONDITIONS = ("ANY_UPDATED", "ALL_UPDATED")
TASK_RETRY_MODES = ("NEVER", "ON_FAILURE")
SUPPORTED_TRIGGERS = ("periodic", "file_arrival", "table_update", "table")
UNSUPPORTED_TRIGGERS = ("model", "job_completion")
TIMERS = ("min_time_between_triggers_seconds", "wait_after_last_change_seconds")
MIN_TIMER_SECONDS = 60
MAX_TABLE_NAMES = 10
EXCLUSIVE_BLOCKS = ("schedule", "trigger", "continuous")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_triggers(data: dict) -> list[Problem]:
    """Problems in the schedule, trigger and continuous blocks of job settings `data`."""
    c = Checker()
    present = [name for name in EXCLUSIVE_BLOCKS if data.get(name) is not None]
    for name in present[1:]:
        c.add(name, f"cannot be combined with {present[0]}; a job runs on one of schedule, "
                    f"trigger or continuous: remove {name} or {present[0]}")
    if data.get("triggers"):  # an empty list asks for nothing
        c.add("triggers", "multiple triggers are not supported by this server; "
                          "use one of schedule, trigger or continuous")
    _check_schedule(c, data)
    _check_trigger(c, data)
    _check_continuous(c, data)
    return c.problems


def with_trigger_defaults(settings: dict) -> dict:
    """A copy of `settings` whose schedule, trigger and continuous blocks have a pause_status."""
    result = copy.deepcopy(settings)
    for name in EXCLUSIVE_BLOCKS:
        if isinstance(result.get(name), dict):
            result[name].setdefault("pause_status", "UNPAUSED")
    return result


def local_path_of(url: str) -> str:
    """The directory a valid file_arrival.url names: the path itself or a file:/// URI's path."""
    return unquote(urlsplit(url).path) if url.startswith("file:") else url


# --- the blocks ------------------------------------------------------------------


def _check_schedule(c: Checker, data: dict) -> None:
    schedule = _block(c, data, "schedule")
    if schedule is None:
        return
    expression = c.string(schedule, "schedule", "quartz_cron_expression",
                          required=True, non_empty=True)
    if expression is not None:
        try:
            parse_quartz(expression)
        except CronInvalid as invalid:
            c.add("schedule.quartz_cron_expression", str(invalid))
    zone = c.string(schedule, "schedule", "timezone_id", required=True, non_empty=True)
    if zone is not None and not _is_time_zone(zone):
        c.add("schedule.timezone_id",
              f"unknown time zone '{zone}'; use an IANA name such as Europe/Berlin")
    c.choice(schedule, "schedule", "pause_status", PAUSE_STATUSES)
    _reject_sql_condition(c, schedule, "schedule")


def _check_trigger(c: Checker, data: dict) -> None:
    trigger = _block(c, data, "trigger")
    if trigger is None:
        return
    kinds = [name for name in SUPPORTED_TRIGGERS + UNSUPPORTED_TRIGGERS if name in trigger]
    if len(kinds) != 1:
        found = f" (found {' and '.join(kinds)})" if kinds else ""
        c.add("trigger", f"set exactly one of periodic, file_arrival, table_update{found}")
    for kind in kinds:
        if kind in UNSUPPORTED_TRIGGERS:
            c.add(f"trigger.{kind}", f"{kind} triggers are not supported by this server")
        elif (block := c.obj(trigger, "trigger", kind)) is not None:
            _CHECKS[kind](c, block, f"trigger.{kind}")
    c.choice(trigger, "trigger", "pause_status", PAUSE_STATUSES)
    _reject_sql_condition(c, trigger, "trigger")


def _check_continuous(c: Checker, data: dict) -> None:
    continuous = _block(c, data, "continuous")
    if continuous is None:
        return
    c.choice(continuous, "continuous", "pause_status", PAUSE_STATUSES)
    c.choice(continuous, "continuous", "task_retry_mode", TASK_RETRY_MODES)
    c.obj(continuous, "continuous", "maintenance_window")


def _block(c: Checker, data: dict, name: str) -> dict | None:
    return c.obj(data, "", name) if data.get(name) is not None else None


def _reject_sql_condition(c: Checker, block: dict, path: str) -> None:
    if block.get("sql_condition") is not None:
        c.add(f"{path}.sql_condition", "SQL conditions are not supported by this server")


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
}


def trigger_block(settings: dict) -> tuple[str, dict, bool] | None:
    """(kind, the block without pause_status, paused) of a job's settings, or None. Kinds are
    schedule, periodic, file_arrival, table_update (also for the older "table") and continuous."""
    if settings.get("continuous"):
        kind, block = "continuous", settings["continuous"]
    elif settings.get("schedule"):
        kind, block = "schedule", settings["schedule"]
    elif settings.get("trigger"):
        block = settings["trigger"]
        found = [name for name in ("periodic", "file_arrival", "table_update", "table") if block.get(name)]
        if not found:
            return None
        kind = "table_update" if found[0] == "table" else found[0]
    else:
        return None
    config = {key: value for key, value in block.items() if key != "pause_status"}
    return kind, config, block.get("pause_status") == "PAUSED"
