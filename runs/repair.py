"""Repair a finished run: re-run a selection of its tasks inside the same run (reference §4.9).

``plan_repair`` decides what a repair re-runs (tasks, and the iterations of the for-each tasks
among them) from the engine's rules; the repair itself (``repair_run``) and its dry run (ours:
``dry_run`` on runs/repair, and the repair dialog's preview) both use it, so the preview is what
the repair does.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from runs.dispatch import advance_locked
from runs.engine.parameters import ParametersInvalid, effective_job_parameters
from runs.engine.repair import RepairInvalid, iterations_to_rerun, tasks_to_rerun
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L
from runs.events import record
from runs.loading import current_attempts, graph_for_version, lock_run, new_task_runs, status_of
from runs.models import Repair, Run, TaskRun


class RepairRefused(ValueError):
    def __init__(self, message, error_code="INVALID_PARAMETER_VALUE"):
        super().__init__(message)
        self.error_code = error_code


@dataclass
class RepairPlan:
    version: object
    only: list | None
    tasks: list  # task keys, in topological order (then tasks added to the job since the run)
    iterations: dict = field(default_factory=dict)  # for-each task key -> indexes that run again
    job_parameters: list = field(default_factory=list)

    def as_dict(self):
        return {"rerun_tasks": self.tasks,
                "rerun_iterations": {key: indexes for key, indexes in self.iterations.items()}}


def plan_repair(run, *, rerun_tasks=None, rerun_all_failed_tasks=False, rerun_dependent_tasks=False,
                latest_repair_id=None, job_parameters=None):
    """What a repair of `run` (locked) would re-run; raises RepairRefused saying why it cannot."""
    if run.life_cycle_state not in FINISHED_LIFE_CYCLES:
        raise RepairRefused(f"Run {run.id} is still active ({run.life_cycle_state}); only a finished run can be repaired",
                            "INVALID_STATE")
    if run.life_cycle_state == L.SKIPPED or not run.task_runs.exists():
        raise RepairRefused(f"Run {run.id} never ran any task, so there is nothing to repair", "INVALID_STATE")
    latest = run.repairs.order_by("-id").first()
    if latest is not None and latest_repair_id != latest.id:
        raise RepairRefused(
            "The latest repair ID needs to be provided in order to create a new repair: "
            f"latest_repair_id must be {latest.id}"
        )
    version = run.job.current_version if run.job.current_version_id else run.job_version
    only = run.only_tasks
    if only is not None:  # a partial run stays partial: the tasks the new version still has
        keys_now = {task["task_key"] for task in version.settings.get("tasks", [])}
        only = [key for key in only if key in keys_now]
    graph = graph_for_version(version, only)
    attempts = current_attempts(run)
    statuses = {node.task_key: status_of(attempts[node.task_key]) for node in graph.nodes if node.task_key in attempts}
    try:
        keys = tasks_to_rerun(graph, statuses, rerun_tasks=rerun_tasks,
                              rerun_all_failed_tasks=bool(rerun_all_failed_tasks),
                              rerun_dependent_tasks=bool(rerun_dependent_tasks))
    except RepairInvalid as exc:
        raise RepairRefused(str(exc)) from exc
    if not keys:
        raise RepairRefused("Nothing to repair: no task of this run failed; name tasks in rerun_tasks")
    # Tasks the current settings added since the run started join it now.
    missing = [n.task_key for n in graph.nodes if n.task_key not in attempts and n.task_key not in keys]
    keys = list(keys) + missing
    try:
        params = effective_job_parameters(version.settings.get("parameters", []), job_parameters,
                                          previous=run.job_parameters)
    except ParametersInvalid as exc:
        raise RepairRefused(str(exc)) from exc
    return RepairPlan(version, only, keys, rerun_iterations(run, keys, attempts), params)


def rerun_iterations(run, keys, attempts):
    """For each for-each task that runs again: the iterations that will (those that did not
    succeed; on the same inputs, the ones that did are kept: runs/control_flow.py start_for_each)."""
    plans = {}
    for key in keys:
        attempt = attempts.get(key)
        if attempt is None or attempt.task_type != "for_each_task":
            continue
        results = dict(TaskRun.objects.filter(run=run, for_each_key=key, is_current=True)
                       .values_list("iteration", "result_state"))
        plans[key] = iterations_to_rerun(results)
    return plans


def repair_run(run_id, *, user=None, now=None, **choices):
    """Re-run the selected tasks with the job's current settings; kept tasks keep state and values."""
    now = now or timezone.now()
    with transaction.atomic():
        run = lock_run(run_id)
        plan = plan_repair(run, **choices)
        repair = Repair.objects.create(run=run, creator=user, created_at=now, rerun_tasks=plan.tasks,
                                       job_parameters=choices.get("job_parameters") or None)
        TaskRun.objects.filter(run=run, task_key__in=plan.tasks, is_current=True, for_each_key="").update(
            is_current=False)
        by_key = {task["task_key"]: task for task in plan.version.settings.get("tasks", [])}
        new_task_runs(run, [by_key[key] for key in plan.tasks], now, repair=repair)
        Run.objects.filter(id=run.id).update(
            life_cycle_state=L.RUNNING, result_state=None, termination_code=None, termination_type=None,
            state_message="", ended_at=None, cancel_reason=None, job_version=plan.version, only_tasks=plan.only,
            repair_count=run.repair_count + 1, job_parameters=plan.job_parameters,
        )
        run = lock_run(run.id)
        record(run, "run.repair_started", None, now, repair_id=repair.id, rerun_tasks=plan.tasks,
               reason=f"repair by {user.get_username()}" if user is not None else "repair")
        advance_locked(run, now)
        return repair


def preview_repair(run_id, **choices):
    """What repair_run with these choices would re-run, changing nothing (and locking nothing)."""
    return plan_repair(Run.objects.select_related("job", "job_version").get(id=run_id), **choices)
