"""Choosing the tasks a repair reruns (reference §4.9)."""

import pytest

from runs.engine.planner import Dependency, TaskNode, TaskStatus, build_graph
from runs.engine.repair import RepairInvalid, tasks_to_rerun, unfinished_tasks
from runs.engine.states import RunIf
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R


def graph():
    # extract -> transform -> load; extract -> audit (ALL_DONE); report stands alone
    return build_graph(
        [
            TaskNode("extract"),
            TaskNode("transform", (Dependency("extract"),)),
            TaskNode("load", (Dependency("transform"),)),
            TaskNode("audit", (Dependency("extract"),), RunIf.ALL_DONE),
            TaskNode("report"),
        ]
    )


def finished_run(**overrides):
    results = {
        "extract": R.SUCCESS,
        "transform": R.FAILED,
        "load": R.UPSTREAM_FAILED,
        "audit": R.SUCCESS,
        "report": R.SUCCESS,
        **overrides,
    }
    return {
        key: TaskStatus(key, L.SKIPPED if result == R.UPSTREAM_FAILED else L.TERMINATED, result)
        for key, result in results.items()
    }


def rerun(statuses=None, *, tasks=None, all_failed=False, dependents=False):
    return tasks_to_rerun(
        graph(),
        finished_run() if statuses is None else statuses,
        rerun_tasks=tasks,
        rerun_all_failed_tasks=all_failed,
        rerun_dependent_tasks=dependents,
    )


def test_repair_reruns_the_failed_and_upstream_failed_tasks():
    assert rerun(all_failed=True) == ["transform", "load"]


def test_repair_of_all_failed_tasks_picks_up_timeouts_cancels_and_lost_workers():
    statuses = finished_run(transform=R.TIMEDOUT, audit=R.CANCELED, load=R.UPSTREAM_CANCELED)
    statuses["report"] = TaskStatus("report", L.INTERNAL_ERROR)

    assert rerun(statuses, all_failed=True) == ["transform", "load", "audit", "report"]


def test_repair_of_all_failed_tasks_leaves_excluded_and_disabled_tasks_alone():
    statuses = finished_run(transform=R.EXCLUDED, load=R.DISABLED, audit=R.SUCCESS_WITH_FAILURES, report=R.FAILED)

    assert rerun(statuses, all_failed=True) == ["report"]


def test_repair_reruns_named_tasks_in_topological_order():
    assert rerun(tasks=["report", "extract"]) == ["extract", "report"]


def test_repair_with_dependents_adds_every_downstream_task_even_a_successful_one():
    assert rerun(tasks=["extract"], dependents=True) == ["extract", "transform", "load", "audit"]


def test_repair_without_dependents_reruns_only_what_was_named():
    assert rerun(tasks=["extract"]) == ["extract"]


def test_repair_names_unknown_task_keys():
    with pytest.raises(RepairInvalid, match="unknown task key\\(s\\) 'ghost', 'phantom'"):
        rerun(tasks=["extract", "ghost", "phantom"])


def test_repair_needs_rerun_tasks_or_rerun_all_failed_tasks():
    with pytest.raises(RepairInvalid, match="Give rerun_tasks"):
        rerun()
    with pytest.raises(RepairInvalid, match="Give rerun_tasks"):
        rerun(tasks=[])


def test_repair_refuses_rerun_tasks_together_with_rerun_all_failed_tasks():
    with pytest.raises(RepairInvalid, match="not both"):
        rerun(tasks=["extract"], all_failed=True)


def test_repair_refuses_a_single_string_as_rerun_tasks():
    with pytest.raises(RepairInvalid, match="must be a list"):
        rerun(tasks="extract")


def test_repair_of_all_failed_tasks_in_a_run_that_succeeded_says_there_is_nothing_to_rerun():
    with pytest.raises(RepairInvalid, match="no task in this run failed"):
        rerun(finished_run(transform=R.SUCCESS, load=R.SUCCESS), all_failed=True)


def test_a_run_with_a_task_still_going_cannot_be_repaired():
    statuses = finished_run()
    statuses["report"] = TaskStatus("report", L.WAITING_FOR_RETRY, attempt_number=1)

    assert unfinished_tasks(statuses) == ["report"]
    with pytest.raises(RepairInvalid, match="still in progress \\('report' not finished\\)"):
        rerun(statuses, all_failed=True)


def test_a_finished_run_can_be_repaired():
    assert unfinished_tasks(finished_run()) == []
    assert rerun(finished_run(), all_failed=True)


def test_repair_with_dependents_includes_tasks_added_to_the_job_since_the_run():
    # Repairs use the current settings: "publish" did not exist when the run ran.
    current = build_graph(list(graph().nodes) + [TaskNode("publish", (Dependency("load"),))])

    chosen = tasks_to_rerun(
        current, finished_run(), rerun_tasks=None, rerun_all_failed_tasks=True, rerun_dependent_tasks=True
    )

    assert chosen == ["transform", "load", "publish"]
