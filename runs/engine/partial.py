"""Partial runs (run-now `only`): which tasks a run is limited to (reference §4.12). Pure.

`key` runs that task, `+key` adds everything upstream of it, `key+` everything downstream,
`+key+` both. Dependencies on tasks left out of the run are dropped: they count as satisfied.
"""

from runs.engine.planner import Graph


class OnlyInvalid(ValueError):
    pass


def _ancestors(graph: Graph, key: str) -> set[str]:
    found, stack = set(), [key]
    while stack:
        for dep in graph.by_key[stack.pop()].depends_on:
            if dep.task_key not in found:
                found.add(dep.task_key)
                stack.append(dep.task_key)
    return found


def select_only(graph: Graph, only: list[str]) -> list[str]:
    """The selected task keys in the graph's order; OnlyInvalid names unknown keys."""
    selected: set[str] = set()
    unknown = []
    for item in only:
        key = item.strip().removeprefix("+").removesuffix("+")
        if key not in graph.by_key:
            unknown.append(item)
            continue
        selected.add(key)
        if item.strip().startswith("+"):
            selected |= _ancestors(graph, key)
        if item.strip().endswith("+") and item.strip() != "+":
            selected |= graph.descendants([key])
    if unknown:
        known = ", ".join(node.task_key for node in graph.nodes[:20])
        raise OnlyInvalid(f"only names tasks that are not in the job: {', '.join(unknown)} (tasks: {known})")
    if not selected:
        raise OnlyInvalid("only must name at least one task")
    return [node.task_key for node in graph.nodes if node.task_key in selected]


def restrict_tasks(tasks: list[dict], keep: list[str] | None) -> list[dict]:
    """The job's task dicts limited to `keep`, without dependencies on the tasks left out."""
    if keep is None:
        return tasks
    wanted = set(keep)
    limited = []
    for task in tasks:
        if task["task_key"] in wanted:
            deps = [dep for dep in task.get("depends_on") or () if dep["task_key"] in wanted]
            limited.append({**task, "depends_on": deps})
    return limited
