"""Evaluate a trigger's sql_condition gate on a warehouse (reference §1.5), and check at save
that the warehouses the gates name exist.

Decisions:
- The query runs where a sql_task of the job would: in a process of the task OS user
  (LAKEFLOW_TASK_USER; runs/executors/condition_query.py), on the URL a sql_task gets
  (warehouses/catalog.py urls_for_task: a stopped created warehouse is started, as a query starts
  it on Databricks; a deleted one fails). Warehouses here have no per-user grants (every user
  has CAN_USE), so the job's run_as identity changes nothing about which warehouse it may use.
- LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS bounds the whole evaluation: waiting for the embedded
  DuckDB file's lock (a sql_task holds it while it runs: the condition waits its turn rather
  than open the file beside it), connecting and querying.
- A failure (the query's error, a missing or deleted warehouse, the time limit, a result that is
  not 1x1 for RESULT_VALUE_CHANGES) is no run: satisfied False, `error` says why (never a
  warehouse password), and the state is the previous one, so the next evaluation compares with
  the last good value.
"""

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from jobs.spec.checker import Problem
from jobs.spec.sql_condition import trigger_mode
from runs.engine.sql_condition import LAST_VALUE, VALUE_CHANGES, condition_verdict
from runs.executors.condition_query import BOOTSTRAP
from runs.executors.launch import ALLOWED_SERVER_VARIABLES
from runs.executors.sql import _without_password
from runs.executors.supervisor import run_as
from warehouses.catalog import WarehouseDeleted, urls_for_task, warehouse_ids

PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)  # the child imports runs.executors from it
# Past the time limit the process answers "timed out" itself; this is for one that cannot.
KILL_GRACE_SECONDS = 10
MAX_ERROR_CHARS = 2000
TRIGGER_BLOCKS = ("schedule", "trigger")


@dataclass(frozen=True)
class ConditionResult:
    satisfied: bool  # the trigger may fire
    reason: str  # for the trigger's decision history: why it did or did not
    state: dict = field(default_factory=dict)  # the new condition state to keep (SqlConditionState + our last value)
    details: dict = field(default_factory=dict)  # the run's trigger_info.sql_condition (SqlConditionRunInfoDetails)
    error: str | None = None  # the query failed: no run, a visible trigger error, evaluated again later


class ConditionFailed(Exception):
    pass


def evaluate_sql_condition(config: dict, previous_state: dict | None, *, job, now) -> ConditionResult:
    """Run the condition's query (config: {warehouse_id, query (ours: the text), trigger_mode}) on
    its warehouse and decide. previous_state: what the last evaluation returned as `state`."""
    statement_id = str(uuid.uuid4())  # one per evaluation, as Databricks' statement ids
    mode = trigger_mode(config)
    try:
        verdict = condition_verdict(mode, query_result(config, now), previous_state)
    except ConditionFailed as exc:
        return _failed(str(exc), previous_state, statement_id)
    if verdict.error:
        return _failed(verdict.error, previous_state, statement_id)
    state = {"latest_condition_evaluation_satisfied": verdict.satisfied,
             "latest_condition_evaluation_sql_statement_id": statement_id}
    if mode == VALUE_CHANGES:
        state[LAST_VALUE] = verdict.value
    return ConditionResult(verdict.satisfied, verdict.reason, state, _details(verdict.satisfied, statement_id))


def _failed(error: str, previous_state, statement_id) -> ConditionResult:
    error = error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS - 3] + "..."
    return ConditionResult(False, f"the condition's query failed: {error}", dict(previous_state or {}),
                           _details(False, statement_id), error=error)


def _details(satisfied: bool, statement_id: str) -> dict:
    return {"condition_evaluation_satisfied": satisfied, "condition_evaluation_sql_statement_id": statement_id}


def query_result(config: dict, now) -> dict:
    """The query's preview (runs/executors/sql.py's shape) from its warehouse; ConditionFailed."""
    warehouse_id, query = config["warehouse_id"], config["query"]
    try:  # the URLs a sql_task naming this warehouse would get
        url = urls_for_task({"sql_task": {"warehouse_id": warehouse_id}}, now).get(warehouse_id)
    except WarehouseDeleted as exc:
        raise ConditionFailed(str(exc)) from None
    if url is None:
        raise ConditionFailed(f"SQL warehouse '{warehouse_id}' does not exist; there are: "
                              f"{', '.join(sorted(warehouse_ids())) or 'none'}")
    timeout = settings.LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS
    request = {"warehouse_id": warehouse_id, "url": url, "query": query, "timeout_seconds": timeout}
    answer = _run_query_process(request, timeout, url)
    if "error" in answer:
        raise ConditionFailed(f"SQL warehouse '{warehouse_id}': {_without_password(answer['error'], url)}")
    return answer["result"]


def _run_query_process(request: dict, timeout: float, url: str) -> dict:
    user = settings.LAKEFLOW_TASK_USER
    switch_to = user if getattr(user, "switch", False) else None
    try:
        done = subprocess.run(
            [settings.LAKEFLOW_TASK_PYTHON, "-c", BOOTSTRAP, PROJECT_ROOT],
            input=json.dumps(request).encode(), capture_output=True, timeout=timeout + KILL_GRACE_SECONDS,
            cwd="/", env=_environment(switch_to), start_new_session=True, **run_as(switch_to))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s (LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS)"}
    except OSError as exc:
        return {"error": f"cannot start the query's process: {exc}"}
    try:
        return json.loads(done.stdout)
    except ValueError:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return {"error": f"the query's process ended with exit code {done.returncode}"
                         + (f": {said[-1]}" if said else "")}


def _environment(switch_to) -> dict:
    """What the query's process sees: the task processes' allow-list, no server secret."""
    env = {name: value for name, value in os.environ.items()
           if name in ALLOWED_SERVER_VARIABLES or name.startswith("LC_")}
    env["PYTHONNOUSERSITE"] = "1"
    if switch_to is not None:
        env.update(HOME=switch_to.home, USER=switch_to.name, LOGNAME=switch_to.name)
    elif "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


# --- at save ---------------------------------------------------------------------------------


def condition_blocks(settings_):
    """(path, sql_condition block) of every trigger of job settings: schedule, trigger, triggers[i]."""
    for name in TRIGGER_BLOCKS:
        block = settings_.get(name)
        if isinstance(block, dict) and isinstance(block.get("sql_condition"), dict):
            yield f"{name}.sql_condition", block["sql_condition"]
    triggers = settings_.get("triggers")
    for i, block in enumerate(triggers if isinstance(triggers, list) else []):
        if isinstance(block, dict) and isinstance(block.get("sql_condition"), dict):
            yield f"triggers[{i}].sql_condition", block["sql_condition"]


def unknown_condition_warehouses(settings_):
    """A jobs.checks server check: each sql_condition names a warehouse this server has."""
    problems, known = [], None
    for path, block in condition_blocks(settings_):
        warehouse = block.get("warehouse_id")
        if not isinstance(warehouse, str) or not warehouse.strip():
            continue  # the pure check said so already
        known = warehouse_ids() if known is None else known
        if warehouse not in known:
            problems.append(Problem(f"{path}.warehouse_id",
                                    f"SQL warehouse '{warehouse}' does not exist; there are: "
                                    f"{', '.join(sorted(known)) or 'none'}"))
    return problems
