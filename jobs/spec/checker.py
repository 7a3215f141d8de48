"""Collects the problems of a document being validated, each with the path of its field.

Shared by the JobSettings checks (settings.py) and the trigger checks (triggers.py): helpers
take (object, its path, key) and return the value only when it is usable, so that callers can go
on checking what depends on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import refs

_DECIMAL = re.compile(r"-?[0-9]{1,20}")

# Databricks' integer fields are int32 unless they hold an id (int64): a value past them is a
# mistake, and one that reaches date arithmetic (now + timeout, start + retry interval) breaks it.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

MISSING = object()


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "tasks[2].depends_on[0].task_key" or "max_concurrent_runs"
    message: str


class SettingsInvalid(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in self.problems))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


class Checker:
    """Collects problems. Field helpers take (object, its path, key) and return the
    value only when it is usable, so callers can go on checking what depends on it."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.task_keys: set[str] = set()
        self.parameter_names: set[str] = set()
        self.env_keys: set[str] = set()
        self.environment_keys: set[str] = set()  # the job's environments[].environment_key

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def _get(self, obj: dict, base: str, key: str, required: bool) -> tuple[bool, Any]:
        if key in obj:
            return True, obj[key]
        if required:
            self.add(_at(base, key), "is required")
        return False, None

    def string(self, obj: dict, base: str, key: str, *, required: bool = False,
               non_empty: bool = False) -> str | None:
        present, value = self._get(obj, base, key, required)
        if not present:
            return None
        if not isinstance(value, str):
            self.add(_at(base, key), "must be a string")
        elif non_empty and not value.strip():
            self.add(_at(base, key), "must not be empty")
        else:
            return value
        return None

    def integer(self, obj: dict, base: str, key: str, *, low: int = 0,
                high: int = INT32_MAX, required: bool = False) -> int | None:
        """An int32 by default, as Databricks' own fields are; ids pass high=INT64_MAX."""
        present, value = self._get(obj, base, key, required)
        if not present:
            return None
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            # The API's JSON mapping takes integers as numbers or decimal strings; keep the number
            # (obj is validate_job_settings' own copy).
            value = obj[key] = int(value)
        if not _is_int(value):
            self.add(_at(base, key), "must be an integer")
        elif not low <= value <= high:
            self.add(_at(base, key), f"must be between {low} and {high:,}")
        else:
            return value
        return None

    def boolean(self, obj: dict, base: str, key: str, *, required: bool = False) -> None:
        present, value = self._get(obj, base, key, required)
        if present and not isinstance(value, bool):
            self.add(_at(base, key), "must be true or false")

    def choice(self, obj: dict, base: str, key: str, choices: tuple[str, ...], *,
               required: bool = False) -> None:
        present, value = self._get(obj, base, key, required)
        if present and value not in choices:
            self.add(_at(base, key), f"must be one of {', '.join(choices)}")

    def obj(self, obj: dict, base: str, key: str, *, required: bool = False) -> dict | None:
        present, value = self._get(obj, base, key, required)
        if present and not isinstance(value, dict):
            self.add(_at(base, key), "must be an object")
            return None
        return value

    def json_types(self, obj: dict, base: str, types: dict[str, str]) -> None:
        """Each present field of `types` is an "object", a "string" or a list of "objects"."""
        for key, kind in types.items():
            value = obj.get(key, MISSING)
            if value is MISSING:
                continue
            if kind == "object" and not isinstance(value, dict):
                self.add(_at(base, key), "must be an object")
            elif kind == "string" and not isinstance(value, str):
                self.add(_at(base, key), "must be a string")
            elif kind == "objects" and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                self.add(_at(base, key), "must be a list of objects")

    def str_list(self, obj: dict, base: str, key: str) -> None:
        present, value = self._get(obj, base, key, False)
        if present and not isinstance(value, list):
            self.add(_at(base, key), "must be a list of strings")
        elif present:
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    self.add(f"{_at(base, key)}[{i}]", "must be a string")

    def str_map(self, obj: dict, base: str, key: str) -> None:
        for name, value in (self.obj(obj, base, key) or {}).items():
            if not isinstance(value, str):
                self.add(f"{_at(base, key)}.{name}", "must be a string")

    def references(self, value: Any, path: str, in_for_each: bool) -> None:
        """Check every string inside `value` for references to things that do not exist."""
        todo = [(value, path)]
        while todo:
            value, path = todo.pop()
            if isinstance(value, str):
                for message in refs.unknown_reference_messages(
                        value, task_keys=self.task_keys,
                        job_parameter_names=self.parameter_names, in_for_each=in_for_each):
                    self.add(path, message)
            elif isinstance(value, dict):
                todo.extend((v, f"{path}.{k}") for k, v in reversed(value.items()))
            elif isinstance(value, list):
                todo.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value))))


