"""run_if, disabled tasks and condition outcomes (reference §2.2, §2.3) on a two-parent fan-in."""

import pytest

from runs.engine.planner import (
    Dependency,
    SkipTask,
    StartTask,
    TaskNode,
    TaskStatus,
    Upstream,
    build_graph,
    decide_run_if,
    next_actions,
)
from runs.engine.states import RunIf
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R

NOW = 1_700_000_000_000
S, F, X, C, D = R.SUCCESS, R.FAILED, R.EXCLUDED, R.CANCELED, R.DISABLED


def fan_in(run_if, **fields):
    return build_graph(
        [
            TaskNode("left"),
            TaskNode("right"),
            TaskNode("child", (Dependency("left"), Dependency("right")), run_if, **fields),
        ]
    )


def decide(run_if, left, right, **fields):
    """The child's action once its parents finished with these results."""
    statuses = {
        "left": TaskStatus("left", L.TERMINATED, left),
        "right": TaskStatus("right", L.TERMINATED, right),
        "child": TaskStatus("child", L.BLOCKED),
    }
    actions = next_actions(fan_in(run_if, **fields), statuses, now_ms=NOW)
    return actions[0]


def outcome_of(action):
    return "run" if isinstance(action, StartTask) else action.result_state


ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, NONE_FAILED = RunIf.ALL_SUCCESS, RunIf.AT_LEAST_ONE_SUCCESS, RunIf.NONE_FAILED
ALL_DONE, AT_LEAST_ONE_FAILED, ALL_FAILED = RunIf.ALL_DONE, RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED

# (run_if, left, right) -> what the child does. One row per rule in the brief and §2.2/§2.3.
TABLE = [
    (ALL_SUCCESS, S, S, "run"),
    (ALL_SUCCESS, S, X, "run"),
    (ALL_SUCCESS, S, F, R.UPSTREAM_FAILED),
    (ALL_SUCCESS, R.TIMEDOUT, S, R.UPSTREAM_FAILED),
    (ALL_SUCCESS, R.UPSTREAM_FAILED, S, R.UPSTREAM_FAILED),
    (ALL_SUCCESS, R.MAXIMUM_CONCURRENT_RUNS_REACHED, S, R.UPSTREAM_FAILED),
    (ALL_SUCCESS, F, C, R.UPSTREAM_CANCELED),
    (ALL_SUCCESS, R.UPSTREAM_CANCELED, S, R.UPSTREAM_CANCELED),
    (ALL_SUCCESS, S, D, R.DISABLED),
    (ALL_SUCCESS, F, D, R.UPSTREAM_FAILED),
    (ALL_SUCCESS, R.SUCCESS_WITH_FAILURES, S, "run"),
    (AT_LEAST_ONE_SUCCESS, S, F, "run"),
    (AT_LEAST_ONE_SUCCESS, X, F, "run"),
    (AT_LEAST_ONE_SUCCESS, D, S, "run"),
    (AT_LEAST_ONE_SUCCESS, F, F, R.UPSTREAM_FAILED),
    (AT_LEAST_ONE_SUCCESS, F, C, R.UPSTREAM_CANCELED),
    (AT_LEAST_ONE_SUCCESS, D, D, R.DISABLED),
    (NONE_FAILED, S, X, "run"),
    (NONE_FAILED, S, D, "run"),
    (NONE_FAILED, S, F, R.UPSTREAM_FAILED),
    (NONE_FAILED, S, C, R.UPSTREAM_CANCELED),
    (NONE_FAILED, X, D, R.DISABLED),
    (ALL_DONE, F, C, "run"),
    (ALL_DONE, D, F, "run"),
    (ALL_DONE, S, X, "run"),
    (AT_LEAST_ONE_FAILED, S, F, "run"),
    (AT_LEAST_ONE_FAILED, R.TIMEDOUT, S, "run"),
    (AT_LEAST_ONE_FAILED, S, S, R.EXCLUDED),
    (AT_LEAST_ONE_FAILED, C, S, R.EXCLUDED),
    (AT_LEAST_ONE_FAILED, D, S, R.DISABLED),
    (AT_LEAST_ONE_FAILED, D, F, "run"),
    (ALL_FAILED, F, R.UPSTREAM_FAILED, "run"),
    (ALL_FAILED, F, S, R.EXCLUDED),
    (ALL_FAILED, F, D, R.DISABLED),
]


@pytest.mark.parametrize(("run_if", "left", "right", "expected"), TABLE, ids=lambda v: str(v))
def test_run_if_decides_whether_a_child_runs_and_what_it_becomes_otherwise(run_if, left, right, expected):
    assert outcome_of(decide(run_if, left, right)) == expected


@pytest.mark.parametrize("run_if", list(RunIf))
def test_a_child_whose_every_parent_was_excluded_is_excluded_whatever_its_run_if(run_if):
    assert decide(run_if, X, X) == SkipTask("child", R.EXCLUDED, "Every upstream task was excluded")


def test_planner_starts_an_internal_error_parent_s_all_failed_child_since_a_lost_worker_is_a_failure():
    statuses = {
        "left": TaskStatus("left", L.INTERNAL_ERROR),
        "right": TaskStatus("right", L.TERMINATED, R.FAILED),
        "child": TaskStatus("child", L.BLOCKED),
    }

    assert next_actions(fan_in(ALL_FAILED), statuses, now_ms=NOW)[0] == StartTask("child")


def test_planner_counts_a_finished_parent_without_a_result_as_failed():
    assert outcome_of(decide(ALL_SUCCESS, S, None)) == R.UPSTREAM_FAILED


def test_skip_messages_say_in_plain_words_why_the_task_did_not_run():
    assert decide(ALL_SUCCESS, F, R.TIMEDOUT).message == "Upstream tasks 'left', 'right' failed"
    assert decide(ALL_SUCCESS, S, C).message == "Upstream task 'right' was canceled"
    assert decide(ALL_SUCCESS, S, D).message == "Upstream task 'right' is disabled"
    assert decide(AT_LEAST_ONE_SUCCESS, F, F).message == (
        "run_if AT_LEAST_ONE_SUCCESS: no upstream task succeeded; upstream tasks 'left', 'right' failed"
    )
    assert decide(NONE_FAILED, S, F).message == "run_if NONE_FAILED: upstream task 'right' failed"
    assert decide(ALL_FAILED, F, S).message == "run_if ALL_FAILED: not every upstream task failed"
    assert decide(AT_LEAST_ONE_FAILED, S, S).message == "run_if AT_LEAST_ONE_FAILED: no upstream task failed"
    assert decide(AT_LEAST_ONE_FAILED, D, S).message == (
        "run_if AT_LEAST_ONE_FAILED: no upstream task failed; upstream task 'left' is disabled"
    )


def test_planner_skips_a_disabled_task_once_its_parents_are_done_whatever_they_did():
    assert decide(ALL_SUCCESS, S, S, disabled=True) == SkipTask("child", R.DISABLED, "Task is disabled")
    assert decide(ALL_FAILED, S, F, disabled=True) == SkipTask("child", R.DISABLED, "Task is disabled")


def test_planner_waits_for_a_disabled_task_s_parents_before_skipping_it():
    statuses = {
        "left": TaskStatus("left", L.RUNNING),
        "right": TaskStatus("right", L.TERMINATED, S),
        "child": TaskStatus("child", L.BLOCKED),
    }

    assert next_actions(fan_in(ALL_SUCCESS, disabled=True), statuses, now_ms=NOW) == []


def test_planner_skips_a_disabled_root_and_marks_its_all_success_chain_disabled():
    graph = build_graph(
        [TaskNode("a", disabled=True), TaskNode("b", (Dependency("a"),)), TaskNode("c", (Dependency("b"),))]
    )
    statuses = {key: TaskStatus(key, L.BLOCKED) for key in "abc"}

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert actions[:3] == [
        SkipTask("a", R.DISABLED, "Task is disabled"),
        SkipTask("b", R.DISABLED, "Upstream task 'a' is disabled"),
        SkipTask("c", R.DISABLED, "Upstream task 'b' is disabled"),
    ]
    assert actions[3].result_state == R.SUCCESS


def condition_graph():
    # check (a condition task) -> yes on "true", no on "false"; both -> report ALL_SUCCESS
    return build_graph(
        [
            TaskNode("check"),
            TaskNode("yes", (Dependency("check", "true"),)),
            TaskNode("no", (Dependency("check", "false"),)),
            TaskNode("report", (Dependency("yes"), Dependency("no"))),
        ]
    )


def condition_statuses(result, outcome):
    statuses = {key: TaskStatus(key, L.BLOCKED) for key in ("yes", "no", "report")}
    statuses["check"] = TaskStatus("check", L.TERMINATED, result, outcome=outcome)
    return statuses


def test_planner_runs_the_taken_branch_of_a_condition_and_excludes_the_other():
    actions = next_actions(condition_graph(), condition_statuses(S, "true"), now_ms=NOW)

    assert actions == [StartTask("yes"), SkipTask("no", R.EXCLUDED, "Every upstream task was excluded")]


def test_planner_takes_the_false_branch_when_the_condition_is_false():
    actions = next_actions(condition_graph(), condition_statuses(S, "false"), now_ms=NOW)

    assert actions == [SkipTask("yes", R.EXCLUDED, "Every upstream task was excluded"), StartTask("no")]


def test_planner_counts_the_excluded_branch_as_successful_for_the_task_that_joins_both():
    statuses = condition_statuses(S, "true")
    statuses["yes"] = TaskStatus("yes", L.TERMINATED, S)
    statuses["no"] = TaskStatus("no", L.SKIPPED, R.EXCLUDED)

    assert next_actions(condition_graph(), statuses, now_ms=NOW)[0] == StartTask("report")


def test_planner_fails_both_branches_of_a_condition_that_failed():
    actions = next_actions(condition_graph(), condition_statuses(F, None), now_ms=NOW)

    assert [outcome_of(a) for a in actions[:3]] == [R.UPSTREAM_FAILED] * 3


def test_decide_run_if_runs_an_all_done_task_whatever_its_parents_did():
    upstream = [("a", Upstream.FAILED), ("b", Upstream.CANCELED), ("c", Upstream.DISABLED)]

    assert decide_run_if(RunIf.ALL_DONE, upstream) == (None, "")
