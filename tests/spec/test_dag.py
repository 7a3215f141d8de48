import pytest

from jobs.spec.dag import (
    CycleError,
    downstream_of,
    find_cycle,
    leaves,
    topological_levels,
    topological_order,
    upstream_of,
)

# extract -> (clean, enrich) -> load
DIAMOND = {"extract": [], "clean": ["extract"], "enrich": ["extract"], "load": ["clean", "enrich"]}
CHAIN = {"a": [], "b": ["a"], "c": ["b"]}
FAN_OUT = {"root": [], "x": ["root"], "y": ["root"], "z": ["root"]}


def chain_of(n):
    return {f"t{i}": ([f"t{i - 1}"] if i else []) for i in range(n)}


def test_an_acyclic_graph_has_no_cycle():
    assert find_cycle(DIAMOND) is None
    assert find_cycle({}) is None


def test_a_two_cycle_is_found_as_a_closed_path_along_depends_on():
    # a depends on b, b depends on a
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]


def test_a_three_cycle_is_found_with_its_path():
    deps = {"start": [], "a": ["c", "start"], "b": ["a"], "c": ["b"]}
    assert find_cycle(deps) == ["a", "c", "b", "a"]


def test_a_self_dependency_is_a_one_task_cycle():
    assert find_cycle({"ok": [], "loop": ["loop"]}) == ["loop", "loop"]


def test_the_cycle_reported_follows_the_given_task_order():
    deps = {"p": ["q"], "q": ["p"], "x": ["y"], "y": ["x"]}
    assert find_cycle(deps) == ["p", "q", "p"]
    assert find_cycle(dict(reversed(list(deps.items())))) == ["y", "x", "y"]


def test_upstream_keys_missing_from_the_graph_are_ignored():
    assert find_cycle({"a": ["ghost"]}) is None
    assert topological_order({"a": ["ghost"], "b": ["a"]}) == ["a", "b"]


def test_topological_order_puts_every_task_after_its_upstream():
    order = topological_order(DIAMOND)
    assert order == ["extract", "clean", "enrich", "load"]


def test_topological_order_keeps_the_given_order_between_ready_tasks():
    deps = {"z": [], "y": [], "x": ["z"], "w": []}
    assert topological_order(deps) == ["z", "y", "x", "w"]


def test_topological_order_of_a_cycle_raises_with_the_cycle():
    with pytest.raises(CycleError) as caught:
        topological_order({"a": ["b"], "b": ["a"], "c": []})
    assert caught.value.cycle == ["a", "b", "a"]
    assert str(caught.value) == "dependency cycle a -> b -> a"


def test_levels_group_tasks_by_depth():
    assert topological_levels(DIAMOND) == [["extract"], ["clean", "enrich"], ["load"]]
    assert topological_levels(FAN_OUT) == [["root"], ["x", "y", "z"]]
    assert topological_levels({}) == []


def test_a_task_sits_one_level_below_its_deepest_upstream():
    deps = {"a": [], "b": ["a"], "c": ["a", "b"]}
    assert topological_levels(deps) == [["a"], ["b"], ["c"]]


def test_downstream_of_is_transitive_and_excludes_the_start():
    assert downstream_of(DIAMOND, ["extract"]) == {"clean", "enrich", "load"}
    assert downstream_of(DIAMOND, ["clean"]) == {"load"}
    assert downstream_of(DIAMOND, ["load"]) == set()


def test_upstream_of_is_transitive_and_excludes_the_start():
    assert upstream_of(DIAMOND, ["load"]) == {"extract", "clean", "enrich"}
    assert upstream_of(CHAIN, ["c", "b"]) == {"a"}
    assert upstream_of(CHAIN, ["a"]) == set()


def test_leaves_are_the_tasks_nothing_depends_on():
    assert leaves(DIAMOND) == {"load"}
    assert leaves(FAN_OUT) == {"x", "y", "z"}
    assert leaves({"alone": []}) == {"alone"}


def test_a_thousand_task_chain_does_not_hit_the_recursion_limit():
    deps = chain_of(1000)
    assert find_cycle(deps) is None
    assert topological_order(deps)[-1] == "t999"
    assert len(topological_levels(deps)) == 1000
    assert len(upstream_of(deps, ["t999"])) == 999
    assert len(downstream_of(deps, ["t0"])) == 999
    assert leaves(deps) == {"t999"}


def test_a_cycle_closing_a_thousand_task_chain_is_found():
    deps = chain_of(1000)
    deps["t0"] = ["t999"]
    cycle = find_cycle(deps)
    assert cycle[0] == cycle[-1] == "t0"
    assert len(cycle) == 1001
