"""``${...}`` references, resolved as the CLI resolves them: any configuration path
(``${bundle.name}``, ``${workspace.file_path}``, ``${var.x}`` for ``variables.x.value``); a string
that is exactly one reference takes the referenced value with its type (a complex variable stays
a mapping); references to deployed objects (``${resources.jobs.<key>.id}``) are left for deploy.
``{{job.parameters.x}}`` references belong to the Jobs API and pass through untouched."""

import re

from lakeflow_cli.bundle.located import where
from lakeflow_cli.bundle.problems import Problem

_SEGMENT = r"[a-zA-Z]+(?:[-_]*[a-zA-Z0-9]+)*"
REFERENCE = re.compile(r"\$\{(" + _SEGMENT + r"(?:\[[0-9]+\])*(?:\." + _SEGMENT + r"(?:\[[0-9]+\])*)*)\}")
DEPLOYED_FIELDS = ("id", "url")  # known only once the resource exists on the server


def split_path(text):
    """``a.b[0].c`` -> ("a", "b", 0, "c")"""
    parts = []
    for segment in text.split("."):
        name, *indexes = segment.split("[")
        parts.append(name)
        parts += [int(index.rstrip("]")) for index in indexes]
    if parts and parts[0] == "var":
        parts = ["variables", parts[1], "value", *parts[2:]]
    return tuple(parts)


def is_deployed_reference(path):
    return len(path) >= 4 and path[0] == "resources" and path[3] in DEPLOYED_FIELDS


def resolve(config):
    """Resolve every reference in ``config`` in place; return the problems."""
    problems = []
    resolver = _Resolver(config, problems)
    resolver.resolve_subtree(())
    return problems


class _Resolver:
    def __init__(self, config, problems):
        self.config, self.problems = config, problems
        self.done, self.stack = set(), []

    def resolve_subtree(self, path):
        if path in self.done:
            return
        if path in self.stack:
            return  # a cycle is reported where the reference is met
        self.stack.append(path)
        container = self._get(path)
        if isinstance(container, dict):
            for key in list(container):
                self._resolve_entry(container, key, path + (key,))
        elif isinstance(container, list):
            for index in range(len(container)):
                self._resolve_entry(container, index, path + (index,))
        self.stack.pop()
        self.done.add(path)

    def _resolve_entry(self, container, key, path):
        value = container[key]
        if isinstance(value, str) and "${" in value:
            container[key] = self._interpolate(value, where(container, key), path)
        elif isinstance(value, (dict, list)):
            self.resolve_subtree(path)

    def _interpolate(self, text, at, path):
        whole = REFERENCE.fullmatch(text)
        if whole:
            return self._value(whole.group(1), at, path, text)
        def replace(match):
            value = self._value(match.group(1), at, path, match.group(0))
            if isinstance(value, (dict, list)):
                self.problems.append(Problem(f"cannot interpolate {match.group(0)}: it is a complex value and the "
                                             "reference is part of a longer string", at, dotted(path)))
                return match.group(0)
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)
        return REFERENCE.sub(replace, text)

    def _value(self, reference, at, path, original):
        target = split_path(reference)
        if is_deployed_reference(target):
            return original
        if target in self.stack or path[:len(target)] == target:
            cycle = self.stack[self.stack.index(target):] if target in self.stack else [path]
            chain = " -> ".join("${" + dotted(p) + "}" for p in cycle + [target])
            self.problems.append(Problem(f"cycle detected in field resolution: {chain}", at, dotted(path)))
            return original
        found, value = self._lookup(target)
        if not found:
            self.problems.append(Problem(f"reference does not exist: {original}", at, dotted(path)))
            return original
        if isinstance(value, str) and "${" in value:
            self.stack.append(target)
            container = self._get(target[:-1])
            resolved = self._interpolate(value, where(container, target[-1]), target)
            container[target[-1]] = resolved
            self.stack.pop()
            return resolved
        if isinstance(value, (dict, list)):
            self.resolve_subtree(target)
            return self._get(target)
        return value

    def _lookup(self, path):
        node = self.config
        for part in path:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return False, None
        return True, node

    def _get(self, path):
        return self._lookup(path)[1]


def dotted(path):
    """("tasks", 0, "task_key") -> tasks[0].task_key; a variable's value path reads var.x."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    if text.startswith("variables.") and text.endswith(".value"):
        return "var." + text[len("variables."):-len(".value")]
    return text


def deployed_references(value, path=()):
    """Every ``${resources.<type>.<key>.<field>}`` inside ``value``: (path, (type, key, field))."""
    found = []
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            target = split_path(match.group(1))
            if is_deployed_reference(target):
                found.append((path, target[1:4]))
    elif isinstance(value, dict):
        for key, item in value.items():
            found += deployed_references(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += deployed_references(item, path + (index,))
    return found


def substitute_deployed(value, ids):
    """``value`` with deployed references replaced from ``ids[(type, key, field)]``; a whole-string
    reference to an id becomes the id's own type (job ids are numbers)."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            target = split_path(whole.group(1))
            if is_deployed_reference(target) and target[1:4] in ids:
                return ids[target[1:4]]
        def replace(match):
            target = split_path(match.group(1))
            if is_deployed_reference(target) and target[1:4] in ids:
                return str(ids[target[1:4]])
            return match.group(0)
        return REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {key: substitute_deployed(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_deployed(item, ids) for item in value]
    return value
