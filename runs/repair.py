"""Repair a finished run: re-run a selection of its tasks inside the same run (runs/repair)."""

from django.db import transaction
from django.utils import timezone

from runs.dispatch import advance_locked
from runs.loading import current_attempts, graph_for_version, lock_run, new_task_runs, status_of
from runs.engine.parameters import ParametersInvalid, effective_job_parameters
from runs.engine.repair import RepairInvalid, tasks_to_rerun
from runs.engine.states import FINISHED_LIFE_CYCLES, RunLifeCycleState as L
from runs.events import record
from runs.models import Repair, Run, TaskRun


class RepairRefused(ValueError):
    def __init__(self, message, error_code="INVALID_PARAMETER_VALUE"):
        super().__init__(message)
        self.error_code = error_code


def repair_run(run_id, *, rerun_tasks=None, rerun_all_failed_tasks=False, rerun_dependent_tasks=False,
               latest_repair_id=None, job_parameters=None, user=None, now=None):
    """Re-run the selected tasks with the job's current settings; kept tasks keep state and values."""
    now = now or timezone.now()
    with transaction.atomic():
        run = lock_run(run_id)
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
        repair = Repair.objects.create(run=run, creator=user, created_at=now, rerun_tasks=keys,
                                       job_parameters=job_parameters or None)
        TaskRun.objects.filter(run=run, task_key__in=keys, is_current=True, for_each_key="").update(is_current=False)
        by_key = {task["task_key"]: task for task in version.settings.get("tasks", [])}
        new_task_runs(run, [by_key[key] for key in keys], now, repair=repair)
        Run.objects.filter(id=run.id).update(
            life_cycle_state=L.RUNNING, result_state=None, termination_code=None, termination_type=None,
            state_message="", ended_at=None, cancel_reason=None, job_version=version, only_tasks=only,
            repair_count=run.repair_count + 1, job_parameters=params,
        )
        run = lock_run(run.id)
        record(run, "run.repair_started", None, now, repair_id=repair.id, rerun_tasks=keys)
        advance_locked(run, now)
        return repair
