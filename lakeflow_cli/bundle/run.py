"""``bundle run <key>``: start a deployed job, follow its tasks in the terminal until the run
ends, print the run page's URL, and exit with the run's result (0 only for SUCCESS)."""

import time

from lakeflow_cli.bundle.problems import BundleError, Problem
from lakeflow_cli.bundle.state import State

POLL_SECONDS = 1.0
FIRST_POLL_SECONDS = 0.1  # a short run is seen ending soon; a long one is polled once a second
FINISHED = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}


def parse_params(text):
    """``--params k=v,k2=v2`` as a dict."""
    params = {}
    for pair in (text or "").split(","):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BundleError([Problem(f"--params {pair}: expected name=value")])
        params[name] = value
    return params


def parse_trailing(args, job_has_parameters):
    """Arguments after ``--``: ``--name value`` / ``--name=value`` job parameters when the job has
    parameters (as the CLI does), else python_params."""
    if not job_has_parameters:
        return {}, list(args)
    params, index = {}, 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--"):
            raise BundleError([Problem(f"{arg}: expected --name value for a job parameter")])
        name, sep, value = arg[2:].partition("=")
        if not sep:
            if index + 1 >= len(args):
                raise BundleError([Problem(f"--{name}: missing value")])
            value, index = args[index + 1], index + 1
        params[name] = value
        index += 1
    return params, []


def start(server, prepared, key, *, params=None, trailing=(), only=None):
    jobs = prepared.resources("jobs")
    if key not in jobs:
        available = ", ".join(sorted(jobs)) or "(none)"
        raise BundleError([Problem(f"resource with key {key!r} not found; the bundle's jobs: {available}")])
    state = State(server, prepared.workspace["state_path"], prepared.name, prepared.target).load()
    entry = state.resources("jobs").get(key)
    if entry is None:
        raise BundleError([Problem(f"job {key} is not deployed yet: run `lakeflow bundle deploy` first")])
    job_params, python_params = parse_trailing(trailing, bool(jobs[key].get("parameters")))
    body = {"job_id": int(entry["id"])}
    job_parameters = {**(params or {}), **job_params}
    if job_parameters:
        body["job_parameters"] = job_parameters
    if python_params:
        body["python_params"] = python_params
    if only:
        body["only"] = only
    return server.call("POST", "/api/2.2/jobs/run-now", body)["run_id"]


def follow(server, run_id, say, *, sleep=time.sleep, poll_seconds=POLL_SECONDS):
    """Print each task's state as it changes until the run ends; return the finished run."""
    seen = {}
    announced = False
    wait = min(FIRST_POLL_SECONDS, poll_seconds)
    while True:
        run = server.call("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
        if not announced and run.get("run_page_url"):
            say(f"Run URL: {run['run_page_url']}")
            announced = True
        for task in run.get("tasks") or []:
            state = task.get("state") or {}
            shown = state.get("result_state") or state.get("life_cycle_state") or "PENDING"
            label = task.get("task_key", "?")
            if (task.get("attempt_number") or 0) > 0:
                label += f" (attempt {task['attempt_number'] + 1})"
            if seen.get(task.get("run_id")) != (shown, label):
                seen[task.get("run_id")] = (shown, label)
                message = state.get("state_message")
                say(f"{time.strftime('%Y-%m-%d %H:%M:%S')} \"{label}\" {shown}"
                    + (f": {message}" if message and state.get("result_state") not in (None, "SUCCESS") else ""))
        life_cycle = (run.get("state") or {}).get("life_cycle_state")
        if life_cycle in FINISHED:
            return run
        sleep(wait)
        wait = min(wait * 2, poll_seconds)


def summary_lines(server, run):
    """The end of a run: its result and, for failed tasks, their error and the log's last lines."""
    state = run.get("state") or {}
    result = state.get("result_state") or state.get("life_cycle_state")
    lines = [f"Run {run.get('run_id')} {result}" + (f": {state['state_message']}" if state.get("state_message") else "")]
    for task in run.get("tasks") or []:
        task_state = task.get("state") or {}
        if task_state.get("result_state") in (None, "SUCCESS", "EXCLUDED", "SKIPPED"):
            continue
        try:
            output = server.call("GET", "/api/2.2/jobs/runs/get-output", query={"run_id": task["run_id"]})
        except Exception:  # the summary must not hide the result
            output = {}
        lines.append(f"Task {task['task_key']} {task_state.get('result_state')}: {output.get('error') or ''}".rstrip())
        logs = (output.get("logs") or "").strip().splitlines()[-20:]
        lines += [f"  {line}" for line in logs]
    return lines
