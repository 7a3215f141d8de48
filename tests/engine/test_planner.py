"""The planner's flow on tiny named graphs: what starts, what waits, when the run ends."""

from runs.engine.planner import (
    Dependency,
    FinishRun,
    RetryTask,
    SkipTask,
    StartTask,
    TaskNode,
    TaskStatus,
    build_graph,
    next_actions,
)
from runs.engine.states import RunLifeCycleState as L
from runs.engine.states import RunResultState as R
from runs.engine.states import TerminationCode, TerminationType

NOW = 1_700_000_000_000


def node(key, *deps, **fields):
    return TaskNode(key, tuple(Dependency(d) for d in deps), **fields)


def chain():
    return build_graph([node("extract"), node("transform", "extract"), node("load", "transform")])


def diamond():
    return build_graph([node("top"), node("left", "top"), node("right", "top"), node("bottom", "left", "right")])


def blocked(graph):
    return {n.task_key: TaskStatus(n.task_key, L.BLOCKED) for n in graph.nodes}


def finished(statuses, key, result, **fields):
    return {**statuses, key: TaskStatus(key, L.TERMINATED, result, **fields)}


def running(statuses, key):
    return {**statuses, key: TaskStatus(key, L.RUNNING, start_time_ms=NOW)}


def apply(statuses, actions):
    """What the shell does with the actions, minus the database."""
    statuses = dict(statuses)
    for action in actions:
        if isinstance(action, StartTask):
            old = statuses[action.task_key]
            statuses[action.task_key] = TaskStatus(action.task_key, L.PENDING, attempt_number=old.attempt_number)
        elif isinstance(action, SkipTask):
            old = statuses[action.task_key]
            statuses[action.task_key] = TaskStatus(action.task_key, L.SKIPPED, action.result_state, old.attempt_number)
        elif isinstance(action, RetryTask):
            retry = TaskStatus(action.task_key, L.WAITING_FOR_RETRY, attempt_number=action.attempt_number)
            statuses[action.task_key] = retry
    return statuses


def simulate(graph, results):
    """Run the graph to its end; each started task finishes with the next of its results."""
    statuses = blocked(graph)
    remaining = {key: list(values) for key, values in results.items()}
    for _ in range(10 * len(graph.nodes) + 10):
        actions = next_actions(graph, statuses, now_ms=NOW)
        statuses = apply(statuses, actions)
        if actions and isinstance(actions[-1], FinishRun):
            return actions[-1], statuses
        for key, status in statuses.items():
            if status.life_cycle_state in (L.PENDING, L.WAITING_FOR_RETRY):
                statuses[key] = TaskStatus(key, L.TERMINATED, remaining[key].pop(0), status.attempt_number, NOW)
    raise AssertionError("the run never finished")


def test_planner_starts_every_root_at_once():
    graph = build_graph([node("a"), node("b"), node("c", "a")])

    assert next_actions(graph, blocked(graph), now_ms=NOW) == [StartTask("a"), StartTask("b")]


def test_planner_starts_a_task_when_its_only_upstream_task_succeeds():
    graph = chain()
    statuses = finished(blocked(graph), "extract", R.SUCCESS)

    assert next_actions(graph, statuses, now_ms=NOW) == [StartTask("transform")]


def test_planner_waits_for_both_sides_of_a_diamond():
    graph = diamond()
    statuses = running(finished(finished(blocked(graph), "top", R.SUCCESS), "left", R.SUCCESS), "right")

    assert next_actions(graph, statuses, now_ms=NOW) == []


def test_planner_starts_the_bottom_of_a_diamond_once_both_sides_succeed():
    graph = diamond()
    statuses = blocked(graph)
    for key in ("top", "left", "right"):
        statuses = finished(statuses, key, R.SUCCESS)

    assert next_actions(graph, statuses, now_ms=NOW) == [StartTask("bottom")]


def test_planner_marks_downstream_upstream_failed_when_a_task_fails():
    graph = chain()
    statuses = finished(blocked(graph), "extract", R.FAILED)

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert actions[:2] == [
        SkipTask("transform", R.UPSTREAM_FAILED, "Upstream task 'extract' failed"),
        SkipTask("load", R.UPSTREAM_FAILED, "Upstream task 'transform' failed"),
    ]
    assert actions[2].result_state == R.FAILED
    assert actions[2].message == "Task 'extract' failed"


def test_planner_starts_every_branch_of_a_fan_out_in_order():
    graph = build_graph([node("source")] + [node(f"branch{i}", "source") for i in range(3)])
    statuses = finished(blocked(graph), "source", R.SUCCESS)

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert actions == [StartTask("branch0"), StartTask("branch1"), StartTask("branch2")]


def test_planner_leaves_running_and_finished_tasks_alone():
    graph = build_graph([node("a"), node("b"), node("c")])
    statuses = {
        "a": TaskStatus("a", L.RUNNING),
        "b": TaskStatus("b", L.PENDING),
        "c": TaskStatus("c", L.TERMINATED, R.SUCCESS),
    }

    assert next_actions(graph, statuses, now_ms=NOW) == []


def test_planner_gives_nothing_new_when_called_again_after_its_actions_were_applied():
    graph = build_graph([node("a"), node("b", "a"), node("c", "b"), node("d"), node("e", "d")])
    statuses = finished(blocked(graph), "a", R.FAILED)

    first = next_actions(graph, statuses, now_ms=NOW)
    second = next_actions(graph, apply(statuses, first), now_ms=NOW)

    assert first == [
        SkipTask("b", R.UPSTREAM_FAILED, "Upstream task 'a' failed"),
        SkipTask("c", R.UPSTREAM_FAILED, "Upstream task 'b' failed"),
        StartTask("d"),
    ]
    assert second == []


def test_planner_finishes_an_empty_job_successfully_at_once():
    actions = next_actions(build_graph([]), {}, now_ms=NOW)

    assert actions == [FinishRun(R.SUCCESS, TerminationCode.SUCCESS, TerminationType.SUCCESS, "All tasks succeeded")]


def test_planner_finishes_the_run_in_the_same_call_as_the_last_skips():
    graph = chain()
    statuses = finished(blocked(graph), "extract", R.SUCCESS)
    statuses = finished(statuses, "transform", R.FAILED)

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert [type(a) for a in actions] == [SkipTask, FinishRun]
    assert actions[-1].termination_code == TerminationCode.RUN_EXECUTION_ERROR
    assert actions[-1].termination_type == TerminationType.CLIENT_ERROR


def test_planner_does_not_finish_while_a_task_is_still_running():
    graph = build_graph([node("a"), node("b")])
    statuses = finished({"b": TaskStatus("b", L.RUNNING)}, "a", R.SUCCESS)

    assert next_actions(graph, statuses, now_ms=NOW) == []


def test_planner_takes_a_task_missing_from_the_statuses_as_not_started():
    graph = chain()

    assert next_actions(graph, {"extract": TaskStatus("extract", L.TERMINATED, R.SUCCESS)}, now_ms=NOW) == [
        StartTask("transform")
    ]


def test_planner_runs_a_diamond_to_success():
    result, statuses = simulate(diamond(), {k: [R.SUCCESS] for k in ("top", "left", "right", "bottom")})

    assert result.result_state == R.SUCCESS
    assert {s.result_state for s in statuses.values()} == {R.SUCCESS}


def test_planner_runs_a_fan_in_whose_one_branch_fails_to_a_failed_run():
    graph = build_graph([node("a"), node("b"), node("c"), node("merge", "a", "b", "c")])

    result, statuses = simulate(graph, {"a": [R.SUCCESS], "b": [R.FAILED], "c": [R.SUCCESS]})

    assert statuses["merge"].result_state == R.UPSTREAM_FAILED
    assert result.result_state == R.FAILED
    assert result.message == "Task 'b' failed"


def test_planner_plans_a_thousand_task_chain_in_one_call_after_the_first_fails():
    graph = build_graph([node("t0")] + [node(f"t{i}", f"t{i - 1}") for i in range(1, 1000)])
    statuses = finished(blocked(graph), "t0", R.FAILED)

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert [a.task_key for a in actions[:-1]] == [f"t{i}" for i in range(1, 1000)]
    assert {a.result_state for a in actions[:-1]} == {R.UPSTREAM_FAILED}
    assert actions[-1].result_state == R.FAILED
    assert actions[-1].message == "Task 't0' failed"


def test_planner_starts_a_thousand_task_fan_out_in_one_call():
    graph = build_graph([node("root")] + [node(f"leaf{i}", "root") for i in range(1000)])
    statuses = finished(blocked(graph), "root", R.SUCCESS)

    actions = next_actions(graph, statuses, now_ms=NOW)

    assert actions == [StartTask(f"leaf{i}") for i in range(1000)]
    assert next_actions(graph, apply(statuses, actions), now_ms=NOW) == []


def test_planner_names_only_a_few_of_a_thousand_failed_parents_in_a_fan_in_message():
    graph = build_graph([node(f"p{i}") for i in range(1000)] + [node("merge", *[f"p{i}" for i in range(1000)])])
    statuses = {f"p{i}": TaskStatus(f"p{i}", L.TERMINATED, R.FAILED) for i in range(1000)}
    statuses["merge"] = TaskStatus("merge", L.BLOCKED)

    skip = next_actions(graph, statuses, now_ms=NOW)[0]

    assert skip == SkipTask(
        "merge", R.UPSTREAM_FAILED, "Upstream tasks 'p0', 'p1', 'p2', 'p3', 'p4' and 995 more failed"
    )
