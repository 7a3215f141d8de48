"""Planning only what a finish can change (``focus``) decides exactly what planning the whole run
decides: checked against the whole-run planner on random DAGs driven to their end."""

import random

import pytest

from runs.engine.graph import Dependency, Graph, TaskNode, TaskStatus
from runs.engine.planner import FinishRun, RetryTask, SkipTask, StartTask, next_actions, planned_by_focus
from runs.engine.states import CancelReason, RunIf, RunLifeCycleState as L, RunResultState as R, is_finished


def chain_graph():
    return Graph((TaskNode("a"), TaskNode("b", depends_on=(Dependency("a"),)), TaskNode("c"),
                  TaskNode("d", depends_on=(Dependency("b"), Dependency("c")))))


def test_the_focus_is_the_task_its_children_and_their_other_parents():
    planned, parents = planned_by_focus(chain_graph(), ["a"])

    assert planned == {"a", "b"}
    assert parents == set()
    assert planned_by_focus(chain_graph(), ["b"]) == ({"b", "d"}, {"a", "c"})


def test_a_leaf_in_a_fan_out_is_planned_alone():
    graph = Graph(tuple(TaskNode(f"t{i}") for i in range(500)))

    assert planned_by_focus(graph, ["t7"]) == ({"t7"}, frozenset())


def test_a_focused_call_never_ends_the_run():
    graph = chain_graph()
    done = {key: TaskStatus(key, L.TERMINATED, R.SUCCESS) for key in "abcd"}

    assert next_actions(graph, done, now_ms=0) == [next_actions(graph, done, now_ms=0)[-1]]
    assert isinstance(next_actions(graph, done, now_ms=0)[-1], FinishRun)
    assert next_actions(graph, done, now_ms=0, focus=frozenset({"d"})) == []


def random_graph(rng, size):
    nodes = []
    for i in range(size):
        parents = rng.sample(range(i), k=min(i, rng.choice([0, 1, 1, 2, 3])))
        deps = tuple(Dependency(f"t{p}", rng.choice([None, None, None, "true", "false"])) for p in sorted(parents))
        nodes.append(TaskNode(f"t{i}", depends_on=deps, run_if=rng.choice(list(RunIf)) if deps else RunIf.ALL_SUCCESS,
                              disabled=rng.random() < 0.08, max_retries=rng.choice([0, 0, 1, 2]),
                              retry_on_timeout=rng.random() < 0.5))
    return Graph(tuple(nodes))


def apply(statuses, actions):
    for action in actions:
        key = action.task_key if not isinstance(action, FinishRun) else None
        attempt = statuses[key].attempt_number if key in statuses else 0
        if isinstance(action, StartTask):
            statuses[key] = TaskStatus(key, L.RUNNING, attempt_number=attempt, start_time_ms=0)
        elif isinstance(action, SkipTask):
            statuses[key] = TaskStatus(key, L.SKIPPED, action.result_state, attempt)
        elif isinstance(action, RetryTask):
            statuses[key] = TaskStatus(key, L.RUNNING, attempt_number=action.attempt_number, start_time_ms=0)


def plan_around(graph, statuses, changed, cancel):
    """runs/dispatch.py plan_around: the children of what changed, then around the skipped ones."""
    planned, parents = planned_by_focus(graph, changed)
    seen = {k: s for k, s in statuses.items() if k in planned | parents}
    actions = next_actions(graph, seen, now_ms=0, cancel_reason=cancel, focus=planned)
    apply(statuses, actions)
    skipped = [a.task_key for a in actions if isinstance(a, SkipTask) and a.task_key not in changed]
    return actions + (plan_around(graph, statuses, skipped, cancel) if skipped else [])


@pytest.mark.parametrize("seed", range(300))
def test_focused_planning_decides_what_whole_run_planning_decides(seed):
    rng = random.Random(seed)
    graph = random_graph(rng, rng.randint(2, 14))
    statuses, cancel = {}, None
    first = next_actions(graph, statuses, now_ms=0)
    apply(statuses, first)
    if isinstance(first[-1], FinishRun):  # every task disabled or skipped at once
        return
    cancel_at = rng.choice([None, None, 1, 3])
    for step in range(200):
        if step == cancel_at and cancel is None:  # the shell plans the whole run when canceling
            cancel = CancelReason.USER
            for key, status in list(statuses.items()):
                if status.life_cycle_state == L.RUNNING:
                    statuses[key] = TaskStatus(key, L.TERMINATING, attempt_number=status.attempt_number, start_time_ms=0)
            whole = next_actions(graph, statuses, now_ms=0, cancel_reason=cancel)
            apply(statuses, whole)
            if whole and isinstance(whole[-1], FinishRun):
                return
        active = sorted(key for key, status in statuses.items() if not is_finished(status.life_cycle_state))
        assert active, "the whole-run planner left nothing running and did not end the run"
        key = rng.choice(active)
        result = R.CANCELED if statuses[key].life_cycle_state == L.TERMINATING else rng.choice(
            [R.SUCCESS, R.SUCCESS, R.SUCCESS, R.FAILED, R.TIMEDOUT])
        statuses[key] = TaskStatus(key, L.TERMINATED, result, statuses[key].attempt_number, start_time_ms=0,
                                   outcome=rng.choice(["true", "false"]))

        whole = next_actions(graph, statuses, now_ms=0, cancel_reason=cancel)
        focused = plan_around(graph, statuses, [key], cancel)  # applies what it decides, as the shell does

        assert sorted(focused, key=repr) == sorted([a for a in whole if not isinstance(a, FinishRun)], key=repr)
        # The shell then plans the whole run only when nothing is left unfinished (has_unfinished_tasks).
        nothing_left = not any(isinstance(a, (StartTask, RetryTask)) for a in focused) and all(
            key in statuses and is_finished(statuses[key].life_cycle_state) for key in graph.by_key)
        assert nothing_left == isinstance(whole[-1] if whole else None, FinishRun)
        if nothing_left:
            assert next_actions(graph, statuses, now_ms=0, cancel_reason=cancel) == [whole[-1]]
            return
    pytest.fail("the run did not end in 200 steps")
