import pytest

from runs.engine.partial import OnlyInvalid, restrict_tasks, select_only
from runs.engine.planner import graph_from_tasks


def task(key, *deps):
    return {"task_key": key, "depends_on": [{"task_key": d} for d in deps]}


TASKS = [task("a"), task("b", "a"), task("c", "b"), task("d"), task("e", "c", "d")]
GRAPH = graph_from_tasks(TASKS)


@pytest.mark.parametrize("only, expected", [
    (["c"], ["c"]),
    (["+c"], ["a", "b", "c"]),
    (["c+"], ["c", "e"]),
    (["+c+"], ["a", "b", "c", "e"]),
    (["+e"], ["a", "b", "c", "d", "e"]),
    (["d", "a"], ["a", "d"]),
])
def test_only_selects_tasks_with_their_upstream_and_downstream(only, expected):
    assert select_only(GRAPH, only) == expected


def test_unknown_keys_are_named():
    with pytest.raises(OnlyInvalid, match="x\\+, \\+y"):
        select_only(GRAPH, ["a", "x+", "+y"])


def test_an_empty_selection_is_refused():
    with pytest.raises(OnlyInvalid):
        select_only(GRAPH, [])


def test_restricting_drops_dependencies_on_tasks_left_out():
    limited = restrict_tasks(TASKS, ["c", "e"])
    assert limited == [task("c"), task("e", "c")]
    assert restrict_tasks(TASKS, None) is TASKS
