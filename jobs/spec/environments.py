"""Task environments: what a task installs before it runs, as Databricks' ``environments`` and
``libraries`` say it, checked at save and reduced to one normalized, hashable list of
requirement lines at run time. Pure: no Django, no I/O (the caller fingerprints local files).

A task with ``environment_key`` gets its job environment's ``spec.dependencies`` (each a line of
a pip requirements file: a requirement, a wheel path, ``-r file``, an option such as
``--index-url``); a task without one gets its ``libraries`` (``pypi``, ``whl``, ``requirements``)
as the same lines. ``environment_version`` and ``client`` are kept and shown, not acted on: every
environment is built over the server's task interpreter. Java, R and egg libraries have no
Python to install and are only reported as skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .checker import Checker

PYTHON_LIBRARY_KINDS = ("pypi", "whl", "requirements")
OTHER_LIBRARY_KINDS = ("jar", "maven", "cran", "egg")
LIBRARY_KINDS = PYTHON_LIBRARY_KINDS + OTHER_LIBRARY_KINDS

# Tasks that run no Python of ours: an environment would never be used.
NO_ENVIRONMENT_TASK_TYPES = frozenset({"sql_task", "condition_task", "run_job_task", "for_each_task"})

_REQUIREMENTS_OPTION = re.compile(r"^(-r|--requirement)(\s+|=)(?P<path>.+)$")
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|zip|tar\.bz2)$", re.IGNORECASE)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Line:
    """One requirement line: ``kind`` is "requirement" (given to the installer as written),
    "path" (a local wheel or project) or "requirements" (a local ``-r`` file)."""
    kind: str
    value: str


@dataclass(frozen=True)
class EnvironmentSpec:
    lines: tuple[Line, ...]
    source: str  # "environments[<key>]" or "libraries", for messages
    recorded: dict = field(default_factory=dict)  # environment_version, client: shown, not acted on
    skipped: tuple[str, ...] = ()  # libraries this server cannot install, with why


# --- save time ------------------------------------------------------------------


def check_environments(c: Checker, entries: Any) -> set[str]:
    """The job's ``environments``; returns the keys defined (duplicates are refused)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return set()  # the passthrough type check has said so
    keys: set[str] = set()
    for i, entry in enumerate(entries):
        path = f"environments[{i}]"
        key = c.string(entry, path, "environment_key", required=True, non_empty=True)
        if key in keys:
            c.add(f"{path}.environment_key", f"duplicate key '{key}'")
        if key is not None:
            keys.add(key)
        spec = c.obj(entry, path, "spec") or {}
        for name in ("client", "environment_version", "base_environment"):
            c.string(spec, f"{path}.spec", name)
        c.str_list(spec, f"{path}.spec", "dependencies")
        c.str_list(spec, f"{path}.spec", "java_dependencies")
        dependencies = spec.get("dependencies")
        for j, dependency in enumerate(dependencies if isinstance(dependencies, list) else []):
            _one_line(c, f"{path}.spec.dependencies[{j}]", dependency)
    return keys


def _one_line(c: Checker, path: str, value: Any) -> None:
    """A dependency is one line of a requirements file: a line break would make it several, which
    the run-time reading of paths (mapped into the task roots) would not see."""
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        c.add(path, "must be one requirement line: no line breaks")


def check_task_environment(c: Checker, task: dict, path: str, environment_keys: set[str]) -> None:
    """A task's ``environment_key`` names a job environment; its ``libraries`` each name a kind."""
    key = task.get("environment_key")
    if isinstance(key, str) and key not in environment_keys:
        c.add(f"{path}.environment_key", f"there is no environment '{key}' in this job's environments")
    libraries = task.get("libraries")
    for i, library in enumerate(libraries if isinstance(libraries, list) else []):
        at = f"{path}.libraries[{i}]"
        if not isinstance(library, dict):
            continue  # the passthrough check said so
        if not any(kind in library for kind in LIBRARY_KINDS):
            c.add(at, f"a library needs one of {', '.join(LIBRARY_KINDS)}")
        for kind in ("whl", "requirements", "jar", "egg"):
            c.string(library, at, kind, non_empty=True)
            _one_line(c, f"{at}.{kind}", library.get(kind))
        pypi = c.obj(library, at, "pypi")
        if pypi is not None:
            c.string(pypi, f"{at}.pypi", "package", required=True, non_empty=True)
            c.string(pypi, f"{at}.pypi", "repo")
            for name in ("package", "repo"):
                _one_line(c, f"{at}.pypi.{name}", pypi.get(name))
        maven = c.obj(library, at, "maven")
        if maven is not None:
            c.string(maven, f"{at}.maven", "coordinates", required=True, non_empty=True)
        cran = c.obj(library, at, "cran")
        if cran is not None:
            c.string(cran, f"{at}.cran", "package", required=True, non_empty=True)


# --- run time -------------------------------------------------------------------


def environment_spec(settings: dict, task: dict, task_type: str) -> EnvironmentSpec | None:
    """What the task installs, or None when it runs on the default interpreter as it is."""
    if task_type in NO_ENVIRONMENT_TASK_TYPES:
        return None
    key = task.get("environment_key")
    if key:
        for entry in settings.get("environments") or []:
            if isinstance(entry, dict) and entry.get("environment_key") == key:
                spec = entry.get("spec") or {}
                recorded = {name: spec[name] for name in ("environment_version", "client") if spec.get(name)}
                skipped = tuple(f"java dependency {dep}: no JVM here" for dep in spec.get("java_dependencies") or [])
                return _spec(spec.get("dependencies") or [], f"environments[{key}]", recorded, skipped)
        return None  # the checker refuses this at save; a job saved before then runs as it is
    libraries = task.get("libraries") or []
    if not libraries:
        return None
    lines, skipped = library_lines(libraries)
    return _spec(lines, "libraries", {}, skipped)


def library_lines(libraries: list) -> tuple[list[str], tuple[str, ...]]:
    """Task ``libraries`` as requirement lines, and the ones skipped (not Python) with why."""
    lines: list[str] = []
    skipped: list[str] = []
    for library in libraries:
        if not isinstance(library, dict):
            continue
        pypi = library.get("pypi")
        if isinstance(pypi, dict) and pypi.get("package"):
            if pypi.get("repo"):
                lines.append(f"--extra-index-url {pypi['repo']}")
            lines.append(str(pypi["package"]))
        if library.get("whl"):
            lines.append(str(library["whl"]))
        if library.get("requirements"):
            lines.append(f"-r {library['requirements']}")
        for kind in OTHER_LIBRARY_KINDS:
            if library.get(kind):
                skipped.append(f"{kind} library {json.dumps(library[kind], sort_keys=True)}: "
                               "only Python libraries are installed by this server")
    return lines, tuple(skipped)


def _spec(dependencies: list, source: str, recorded: dict, skipped: tuple) -> EnvironmentSpec:
    return EnvironmentSpec(tuple(classify(d) for d in normalized_lines(dependencies)), source, recorded, skipped)


def normalized_lines(dependencies: list) -> list[str]:
    """Stripped, without blanks and comments, duplicates dropped (order kept: options such as
    ``--index-url`` apply to what follows in pip's reading too)."""
    seen: dict[str, None] = {}
    for dependency in dependencies:
        line = str(dependency).strip()
        if line and not line.startswith("#"):
            seen.setdefault(line, None)
    return list(seen)


def classify(line: str) -> Line:
    """A ``-r`` file, a local path (to be mapped into the task's roots) or a requirement."""
    found = _REQUIREMENTS_OPTION.match(line)
    if found:
        return Line("requirements", found.group("path").strip())
    if line.startswith("file://"):
        return Line("path", line)
    if _URL.match(line) or line.startswith("-") or "@" in line or ";" in line:
        return Line("requirement", line)  # a URL, an option, a direct reference, a marker
    if line.startswith(("/", "./", "../", "~")) or _ARCHIVE.search(line):
        return Line("path", line)
    return Line("requirement", line)


def environment_key_of(lines: list[str], python: str, fingerprints: dict[str, str]) -> str:
    """The cache key of an environment: its resolved requirement lines, the interpreter it is
    built over, and the content of the local files it installs (a rebuilt wheel at the same path
    is a new environment). Order-sensitive, as the installer's reading of the lines is."""
    document = json.dumps({"lines": list(lines), "python": python, "files": dict(sorted(fingerprints.items()))},
                          sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(document.encode()).hexdigest()[:32]
