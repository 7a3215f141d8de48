"""A job's tasks as the planner sees them: nodes with their dependencies and retry policy, in
topological order, and the status of each task's latest attempt. Pure.

The order comes from jobs/spec/dag.py, the one DAG of the code base (the validator reports its
cycles by path; here a graph that got past it is only sorted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from jobs.spec.dag import downstream_of, topological_order
from jobs.spec.task_types import unsupported_kind
from runs.engine.states import RunIf, RunLifeCycleState, RunResultState

@dataclass(frozen=True)
class Dependency:
    task_key: str
    outcome: str | None = None  # "true"/"false": only for condition-task parents


@dataclass(frozen=True)
class TaskNode:
    task_key: str
    depends_on: tuple[Dependency, ...] = ()
    run_if: RunIf = RunIf.ALL_SUCCESS
    disabled: bool = False
    max_retries: int = 0  # -1 = retry forever
    min_retry_interval_millis: int = 0
    retry_on_timeout: bool = False


@dataclass(frozen=True)
class Graph:
    """Task nodes in topological order, with the lookups the planner needs built once.

    Equality and hashing use `nodes` only; the lookups are derived from them.
    """

    nodes: tuple[TaskNode, ...]
    by_key: Mapping[str, TaskNode] = field(init=False, repr=False, compare=False)
    position: Mapping[str, int] = field(init=False, repr=False, compare=False)
    downstream: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    leaves: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        nodes = tuple(self.nodes)
        position: dict[str, int] = {}
        children: dict[str, dict[str, None]] = {}
        for i, node in enumerate(nodes):
            key = node.task_key
            if key in position:
                raise ValueError(f"duplicate task_key {key!r}")
            for dep in node.depends_on:
                # Checking order here means every Graph is safe to plan, however it was built.
                if dep.task_key not in position:
                    raise ValueError(
                        f"task {key!r} depends on {dep.task_key!r}, which is unknown or comes after it; "
                        "build the graph with build_graph to sort it"
                    )
                children[dep.task_key][key] = None
            position[key] = i
            children[key] = {}
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "by_key", MappingProxyType({node.task_key: node for node in nodes}))
        object.__setattr__(self, "position", MappingProxyType(position))
        object.__setattr__(self, "downstream", MappingProxyType({k: tuple(v) for k, v in children.items()}))
        object.__setattr__(self, "leaves", tuple(k for k, v in children.items() if not v))

    def descendants(self, keys: Iterable[str]) -> set[str]:
        """Every task downstream of `keys`, transitively, not counting `keys` themselves."""
        deps = {node.task_key: [dep.task_key for dep in node.depends_on] for node in self.nodes}
        return downstream_of(deps, keys) - set(keys)


def build_graph(nodes: Iterable[TaskNode]) -> Graph:
    """Sort nodes so every task follows its upstream tasks; ties keep the given order.

    The input should already be validated (jobs/spec); bad input still raises ValueError (a
    CycleError for a cycle) rather than producing a plan that never finishes.
    """
    nodes = list(nodes)
    by_key: dict[str, TaskNode] = {}
    for node in nodes:
        if node.task_key in by_key:
            raise ValueError(f"duplicate task_key {node.task_key!r}")
        by_key[node.task_key] = node
    for node in nodes:
        for dep in node.depends_on:
            if dep.task_key not in by_key:
                raise ValueError(f"task {node.task_key!r} depends on unknown task {dep.task_key!r}")
    deps = {node.task_key: [dep.task_key for dep in node.depends_on] for node in nodes}
    return Graph(tuple(by_key[key] for key in topological_order(deps)))


def normalized_outcome(value) -> str | None:
    # The API sends "true"/"false"; a YAML bundle may hand us a real boolean.
    return None if value is None else str(value).lower()


def node_from_task(task: Mapping) -> TaskNode:
    """A TaskNode from one Jobs API task dict; missing or null fields take the API defaults."""
    return TaskNode(
        task_key=task["task_key"],
        depends_on=tuple(
            Dependency(dep["task_key"], normalized_outcome(dep.get("outcome"))) for dep in task.get("depends_on") or ()
        ),
        run_if=RunIf(task.get("run_if") or RunIf.ALL_SUCCESS),
        disabled=bool(task.get("disabled") or False),
        # A task this server cannot run fails the same way every time: no retries to wait for.
        max_retries=0 if unsupported_kind(dict(task)) else int(task.get("max_retries") or 0),
        min_retry_interval_millis=int(task.get("min_retry_interval_millis") or 0),
        retry_on_timeout=bool(task.get("retry_on_timeout") or False),
    )


def graph_from_tasks(tasks: list[dict]) -> Graph:
    return build_graph(node_from_task(task) for task in tasks)


# --- statuses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskStatus:
    """The LATEST attempt of one task in this run."""

    task_key: str
    life_cycle_state: RunLifeCycleState
    result_state: RunResultState | None = None
    attempt_number: int = 0  # 0-based
    start_time_ms: int | None = None  # start of this attempt (None if it never started)
    outcome: str | None = None  # condition tasks: "true"/"false"
