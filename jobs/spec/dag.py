"""The task graph of a job, as a mapping ``task_key -> upstream task keys``.

Pure and iterative: jobs may hold 1,000 tasks in one chain, deeper than Python's
recursion limit, so every walk keeps its own stack. Upstream keys that are not
themselves keys of the mapping are ignored here; `settings.py` reports them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

Deps = Mapping[str, Sequence[str]]


class CycleError(ValueError):
    """The graph has a cycle; `cycle` is the closed path from `find_cycle`."""

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__("dependency cycle " + " -> ".join(cycle))


def _upstream(deps: Deps, key: str) -> list[str]:
    # Duplicates would double-count in-degrees; unknown keys are not part of the graph.
    seen: dict[str, None] = {}
    for up in deps[key]:
        if up in deps:
            seen[up] = None
    return list(seen)


def find_cycle(deps: Deps) -> list[str] | None:
    """A cycle as a closed path that follows depends_on edges, or None.

    Each key in the path depends on the next one: ``["a", "b", "a"]`` means
    a depends on b and b depends on a. A task that depends on itself gives
    ``["a", "a"]``. Tasks and their depends_on lists are walked in the given
    order, so the same graph always reports the same cycle.
    """
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        path = [root]
        on_path = {root: 0}  # key -> index in path
        stack = [iter(deps[root])]
        while stack:
            for up in stack[-1]:
                if up not in deps or up in done:
                    continue
                if up in on_path:
                    return path[on_path[up]:] + [up]
                on_path[up] = len(path)
                path.append(up)
                stack.append(iter(deps[up]))
                break
            else:
                stack.pop()
                finished = path.pop()
                del on_path[finished]
                done.add(finished)
    return None


def _downstream_map(deps: Deps) -> dict[str, list[str]]:
    down: dict[str, list[str]] = {key: [] for key in deps}
    for key in deps:
        for up in _upstream(deps, key):
            down[up].append(key)
    return down


def topological_order(deps: Deps) -> list[str]:
    """Every key after all of its upstream keys; ties keep the given order.

    Raises CycleError when there is no such order.
    """
    position = {key: i for i, key in enumerate(deps)}
    keys = list(deps)
    waiting = {key: len(_upstream(deps, key)) for key in deps}
    down = _downstream_map(deps)
    ready = [position[key] for key in deps if waiting[key] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        key = keys[heapq.heappop(ready)]
        order.append(key)
        for child in down[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    if len(order) != len(deps):
        raise CycleError(find_cycle(deps) or [])
    return order


def topological_levels(deps: Deps) -> list[list[str]]:
    """Keys grouped by depth: level 0 has no upstream, level n needs level n-1.

    Within a level keys keep the given order. Raises CycleError on a cycle.
    """
    level: dict[str, int] = {}
    for key in topological_order(deps):
        level[key] = max((level[up] + 1 for up in _upstream(deps, key)), default=0)
    levels: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for key in deps:
        levels[level[key]].append(key)
    return levels


def _reachable(edges: Mapping[str, Iterable[str]], start: Iterable[str]) -> set[str]:
    start = set(start)
    seen: set[str] = set()
    todo = [key for key in start if key in edges]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt in edges and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen - start


def downstream_of(deps: Deps, keys: Iterable[str]) -> set[str]:
    """Every task that depends, directly or not, on one of `keys` (not `keys` themselves)."""
    return _reachable(_downstream_map(deps), keys)


def upstream_of(deps: Deps, keys: Iterable[str]) -> set[str]:
    """Every task that one of `keys` depends on, directly or not (not `keys` themselves)."""
    return _reachable(deps, keys)


def leaves(deps: Deps) -> set[str]:
    """Tasks that no task depends on; the job's result is derived from these."""
    depended_on = {up for ups in deps.values() for up in ups}
    return {key for key in deps if key not in depended_on}
