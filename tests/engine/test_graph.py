import pytest

from runs.engine.planner import Dependency, Graph, TaskNode, build_graph, graph_from_tasks
from runs.engine.states import RunIf


def node(key, *deps, **fields):
    return TaskNode(key, tuple(Dependency(d) for d in deps), **fields)


def keys(graph):
    return [n.task_key for n in graph.nodes]


def test_build_graph_puts_every_task_after_its_upstream_tasks():
    graph = build_graph([node("load", "transform"), node("transform", "extract"), node("extract")])

    assert keys(graph) == ["extract", "transform", "load"]


def test_build_graph_keeps_the_given_order_between_independent_tasks():
    # diamond given with its middle tasks in reverse alphabetical order
    graph = build_graph([node("top"), node("right", "top"), node("left", "top"), node("bottom", "left", "right")])

    assert keys(graph) == ["top", "right", "left", "bottom"]


def test_build_graph_sorts_a_thousand_task_chain_without_recursion():
    chain = [node(f"t{i}", f"t{i - 1}") if i else node("t0") for i in range(1000)]

    graph = build_graph(reversed(chain))

    assert keys(graph) == [f"t{i}" for i in range(1000)]
    assert graph.leaves == ("t999",)


def test_build_graph_knows_downstream_tasks_and_leaves_of_a_diamond():
    graph = build_graph([node("top"), node("left", "top"), node("right", "top"), node("bottom", "left", "right")])

    assert graph.downstream["top"] == ("left", "right")
    assert graph.downstream["bottom"] == ()
    assert graph.leaves == ("bottom",)
    assert graph.by_key["left"].depends_on == (Dependency("top"),)


def test_build_graph_counts_a_repeated_dependency_once():
    graph = build_graph([node("a"), node("b", "a", "a")])

    assert keys(graph) == ["a", "b"]
    assert graph.downstream["a"] == ("b",)


def test_build_graph_rejects_a_cycle_naming_its_tasks():
    with pytest.raises(ValueError, match="dependency cycle a -> b -> a"):
        build_graph([node("a", "b"), node("b", "a"), node("c")])


def test_build_graph_rejects_an_unknown_dependency():
    with pytest.raises(ValueError, match="unknown task 'ghost'"):
        build_graph([node("a", "ghost")])


def test_build_graph_rejects_a_duplicate_task_key():
    with pytest.raises(ValueError, match="duplicate task_key 'a'"):
        build_graph([node("a"), node("a")])


def test_graph_refuses_nodes_that_are_not_in_topological_order():
    with pytest.raises(ValueError, match="use build_graph|build the graph with build_graph"):
        Graph((node("b", "a"), node("a")))


def test_graphs_with_the_same_nodes_are_equal_and_hash_alike():
    first = build_graph([node("a"), node("b", "a")])
    second = build_graph([node("b", "a"), node("a")])

    assert first == second
    assert hash(first) == hash(second)


def test_descendants_follow_every_path_downstream():
    graph = build_graph([node("a"), node("b", "a"), node("c", "b"), node("d", "a"), node("e")])

    assert graph.descendants(["a"]) == {"b", "c", "d"}
    assert graph.descendants(["e"]) == set()


def test_graph_from_tasks_reads_jobs_api_task_dicts():
    graph = graph_from_tasks(
        [
            {
                "task_key": "notify",
                "depends_on": [{"task_key": "check", "outcome": "true"}],
                "run_if": "ALL_DONE",
                "disabled": True,
                "max_retries": -1,
                "min_retry_interval_millis": 5000,
                "retry_on_timeout": True,
            },
            {"task_key": "check"},
        ]
    )

    assert keys(graph) == ["check", "notify"]
    assert graph.by_key["notify"] == TaskNode(
        "notify",
        (Dependency("check", "true"),),
        run_if=RunIf.ALL_DONE,
        disabled=True,
        max_retries=-1,
        min_retry_interval_millis=5000,
        retry_on_timeout=True,
    )


def test_graph_from_tasks_fills_missing_and_null_fields_with_api_defaults():
    graph = graph_from_tasks([{"task_key": "a", "depends_on": None, "run_if": None, "max_retries": None}])

    assert graph.by_key["a"] == TaskNode("a")


def test_graph_from_tasks_reads_a_boolean_outcome_as_the_api_string():
    graph = graph_from_tasks(
        [{"task_key": "check"}, {"task_key": "yes", "depends_on": [{"task_key": "check", "outcome": True}]}]
    )

    assert graph.by_key["yes"].depends_on == (Dependency("check", "true"),)


def test_an_empty_graph_has_no_nodes_and_no_leaves():
    graph = build_graph([])

    assert graph.nodes == ()
    assert graph.leaves == ()
