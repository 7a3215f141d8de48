"""What a run page shows of a run, as one JSON-able snapshot: the run's state, each task's
latest attempt laid out by dependency level, and the id of the newest RunEvent it reflects.

The run page renders the first snapshot; its websocket (runs/consumers.py) sends a new one
whenever a RunEvent row newer than the last one appears, and the polling fallback fetches the
same snapshot from runs:state. Events are rows, so this works across processes without a
broker; with Redis, workers also nudge the sockets so they look at once (nudge_runs, a reaction
to every event: runs/reactions.py).
"""

import os
import threading
from collections import Counter

from django.conf import settings
from django.utils import timezone

from jobs.spec.dag import CycleError, topological_levels
from jobs.spec.task_types import task_type_of
from runs.engine.states import RunLifeCycleState as L, is_finished
from runs.event_log import health_warnings, watches_health
from runs.for_each import iteration_stats
from runs.models import RunEvent, TaskRun
from runs.reactions import on_every_event

# The colour family of a task or run in every page (CSS classes state-<name>).
ACTIVE = {L.PENDING: "pending", L.QUEUED: "pending", L.BLOCKED: "blocked", L.WAITING_FOR_RETRY: "retrying",
          L.RUNNING: "running", L.TERMINATING: "running"}


LIVE_RUN_FIELDS = ["life_cycle_state", "result_state", "state_message", "started_at", "ended_at", "repair_count"]


def state_class(life_cycle_state, result_state):
    """success / failed / canceled / skipped / excluded / upstream / running / pending / blocked / retrying."""
    if life_cycle_state in ACTIVE:
        return ACTIVE[life_cycle_state]
    return {
        "SUCCESS": "success", "SUCCESS_WITH_FAILURES": "success",
        "FAILED": "failed", "TIMEDOUT": "failed", "MAXIMUM_CONCURRENT_RUNS_REACHED": "failed",
        "CANCELED": "canceled", "UPSTREAM_CANCELED": "upstream", "UPSTREAM_FAILED": "upstream",
        "EXCLUDED": "excluded", "SKIPPED": "skipped", "DISABLED": "skipped",
    }.get(result_state or "", "failed" if life_cycle_state == L.INTERNAL_ERROR else "pending")


def state_label(life_cycle_state, result_state):
    if is_finished(life_cycle_state) and result_state:
        return result_state.replace("_", " ").capitalize()
    return life_cycle_state.replace("_", " ").capitalize()


def seconds_between(start, end, now):
    if start is None:
        return None
    return max(0.0, ((end or now) - start).total_seconds())


def latest_event(run_id):
    """(id, at) of the run's newest event, or (0, None)."""
    return RunEvent.objects.filter(run_id=run_id).order_by("-id").values_list("id", "at").first() or (0, None)


def task_levels(tasks):
    """{task_key: (level, row)}: columns by dependency depth, rows in the job's task order."""
    deps = {task["task_key"]: [d["task_key"] for d in task.get("depends_on") or []] for task in tasks}
    try:
        levels = topological_levels(deps)
    except CycleError:  # cannot happen for a saved job; draw one column rather than fail
        levels = [list(deps)]
    return {key: (level, row) for level, keys in enumerate(levels) for row, key in enumerate(keys)}


def run_snapshot(run, now=None):
    """The run page's live data. Reads the run's task attempts once (plus one count per for-each)."""
    now = now or timezone.now()
    tasks = run.job_version.settings.get("tasks", [])
    if run.only_tasks is not None:
        tasks = [task for task in tasks if task["task_key"] in set(run.only_tasks)]
    # The event first: a change that lands while the attempts are read is then newer than
    # the snapshot's event_id, so the socket sends another snapshot.
    event_id, event_at = latest_event(run.id)
    run.refresh_from_db(fields=LIVE_RUN_FIELDS)
    attempts = list(TaskRun.objects.filter(run=run, for_each_key="").order_by("id"))
    latest, counts = {}, Counter()
    for attempt in attempts:
        counts[attempt.task_key] += 1
        if attempt.is_current or attempt.task_key not in latest:
            latest[attempt.task_key] = attempt
    positions = task_levels(tasks)
    nodes = []
    for task in tasks:
        key = task["task_key"]
        attempt = latest.get(key)
        level, row = positions.get(key, (0, 0))
        node = {"key": key, "level": level, "row": row, "type": task_type(task),
                "depends_on": [d["task_key"] for d in task.get("depends_on") or []],
                "outcomes": {d["task_key"]: d["outcome"] for d in task.get("depends_on") or [] if d.get("outcome")},
                "state": "blocked", "label": "Not started", "attempts": counts[key], "task_run_id": None,
                "seconds": None, "message": ""}
        if attempt is not None:
            node.update(state=state_class(attempt.life_cycle_state, attempt.result_state),
                        label=state_label(attempt.life_cycle_state, attempt.result_state),
                        task_run_id=attempt.id, message=attempt.state_message[:300],
                        seconds=seconds_between(attempt.started_at, attempt.ended_at, now))
            if attempt.task_type == "for_each_task" and attempt.started_at:
                node["for_each"] = iteration_stats(run, attempt)["task_run_stats"]
        nodes.append(node)
    return {
        "run_id": run.id,
        "state": state_class(run.life_cycle_state, run.result_state),
        "label": state_label(run.life_cycle_state, run.result_state),
        "finished": is_finished(run.life_cycle_state),
        "message": run.state_message,
        "seconds": seconds_between(run.started_at or run.created_at, run.ended_at, now),
        "repairs": run.repair_count,
        "nodes": nodes,
        "attempts": [attempt_bar(a, now) for a in attempts if a.started_at],
        # run.health_warning events: badges in the header (job level) and on the tasks' nodes.
        "warnings": health_warnings(run.id) if watches_health(run.job_version.settings) else [],
        "event_id": event_id,
        # When that event happened: bench/live_update_latency.py measures event -> browser with it.
        "event_at": event_at.isoformat() if event_at else None,
    }


def attempt_bar(attempt, now):
    """One bar of the Gantt timeline."""
    return {"key": attempt.task_key, "attempt": attempt.attempt_number, "task_run_id": attempt.id,
            "start": attempt.started_at.isoformat(), "end": (attempt.ended_at or now).isoformat(),
            "state": state_class(attempt.life_cycle_state, attempt.result_state)}


def task_type(task):
    """The short type shown on a task's node: notebook, spark_python, sql..."""
    return (task_type_of(task) or "task").removesuffix("_task")


@on_every_event
def nudge_runs(run_ids):
    """Once a transaction that wrote run events has committed, wake the sockets of those runs in
    every web process (Redis only: the embedded default's sockets find new events by reading
    them). One message per run and transaction, however many events it wrote."""
    if not settings.REDIS_URL:
        return
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def send_all():
        for run_id in run_ids:
            await layer.group_send(run_group(run_id), {"type": "run.changed"})

    try:
        with _nudge_loop_lock:
            nudge_loop().run_until_complete(send_all())
    except Exception:  # a live page is a nicety; a Redis hiccup must not fail the run
        pass


_nudge_loop_lock = threading.Lock()
_nudge_loop = {}


def nudge_loop():
    """This process's event loop for nudges, run by whichever thread nudges (no thread of its
    own): channels-redis keeps a connection pool per loop, and a new loop per nudge (what
    async_to_sync does) reconnected to Redis for every state change, a few ms each time."""
    import asyncio

    loop = _nudge_loop.get(os.getpid())  # keyed by pid: a forked child must not share our sockets
    if loop is None:
        _nudge_loop.clear()
        loop = _nudge_loop[os.getpid()] = asyncio.new_event_loop()
    return loop


def run_group(run_id):
    return f"run-{run_id}"
