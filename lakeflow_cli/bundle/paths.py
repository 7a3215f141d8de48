"""Relative task paths, resolved as the CLI resolves them: relative to the file that defines the
field, required to exist and to lie inside the bundle root, then rewritten to the synced copy
under ``workspace.file_path`` (notebooks lose their extension, as in the workspace). Tasks that
run from Git (``source: GIT``, or a job with ``git_source`` and no ``source``) keep their paths:
those are relative to the repository.

Local wheels and jars in ``libraries`` and environment ``dependencies`` are left to
``artifacts``: they are uploaded, not synced."""

import posixpath
import re
from pathlib import Path

from lakeflow_cli.bundle.located import where
from lakeflow_cli.bundle.problems import Problem

NOTEBOOK_EXTENSIONS = (".py", ".ipynb", ".sql", ".scala", ".r")
# (task field, key, kind): kind is notebook, file or directory.
TASK_PATHS = (
    ("notebook_task", "notebook_path", "notebook"),
    ("spark_python_task", "python_file", "file"),
    ("dbt_task", "project_directory", "directory"),
    ("dbt_task", "profiles_directory", "directory"),
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def is_local_relative(path):
    return (isinstance(path, str) and path != "" and not path.startswith(("/", "${", "~"))
            and not _SCHEME.match(path))


def base_directory(root, location):
    """The directory of the file a field was written in (the bundle root when unknown)."""
    if location is None:
        return Path(root)
    return (Path(root) / location.file).parent


def job_tasks(job, job_path):
    """Every task of a job, for_each inner tasks too: (task, path)."""
    for index, task in enumerate(job.get("tasks") or []):
        if isinstance(task, dict):
            yield from _with_inner(task, f"{job_path}.tasks[{index}]")


def _with_inner(task, path):
    yield task, path
    inner = (task.get("for_each_task") or {}).get("task") if isinstance(task.get("for_each_task"), dict) else None
    if isinstance(inner, dict):
        yield from _with_inner(inner, f"{path}.for_each_task.task")


def rewrite(config, root):
    """Rewrite every relative task path of every job in place; return the problems."""
    problems = []
    file_path = config["workspace"]["file_path"]
    for key, job in ((config.get("resources") or {}).get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        job_has_git = isinstance(job.get("git_source"), dict)
        for task, path in job_tasks(job, f"resources.jobs.{key}"):
            for block_name, field, kind in TASK_PATHS:
                block = task.get(block_name)
                if not isinstance(block, dict) or not is_local_relative(block.get(field)):
                    continue
                if _from_git(block, job_has_git):
                    continue
                problem = _rewrite_field(block, field, kind, root, file_path, f"{path}.{block_name}.{field}")
                if problem:
                    problems.append(problem)
            sql_file = (task.get("sql_task") or {}).get("file") if isinstance(task.get("sql_task"), dict) else None
            if isinstance(sql_file, dict) and is_local_relative(sql_file.get("path")) and not _from_git(
                    sql_file, job_has_git):
                problem = _rewrite_field(sql_file, "path", "file", root, file_path, f"{path}.sql_task.file.path")
                if problem:
                    problems.append(problem)
            for index, library in enumerate(task.get("libraries") or []):
                if isinstance(library, dict) and is_local_relative(library.get("requirements")):
                    problem = _rewrite_field(library, "requirements", "file", root, file_path,
                                             f"{path}.libraries[{index}].requirements")
                    if problem:
                        problems.append(problem)
        for env_index, environment in enumerate(job.get("environments") or []):
            dependencies = ((environment or {}).get("spec") or {}).get("dependencies") or []
            for index, dependency in enumerate(dependencies):
                if isinstance(dependency, str) and dependency.startswith("-r "):
                    requirement = dependency[3:].strip()
                    if is_local_relative(requirement):
                        local = base_directory(root, where(dependencies, index)) / requirement
                        rel = _inside(local, root)
                        if rel is None or not local.is_file():
                            problems.append(Problem(f"requirements file {requirement} not found in the bundle",
                                                    where(dependencies, index),
                                                    f"resources.jobs.{key}.environments[{env_index}].spec."
                                                    f"dependencies[{index}]"))
                        else:
                            dependencies[index] = f"-r {posixpath.join(file_path, rel)}"
    return problems


def _from_git(block, job_has_git):
    source = block.get("source")
    return source == "GIT" or (source is None and job_has_git)


def _inside(local, root):
    try:
        return local.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None


def _rewrite_field(block, field, kind, root, file_path, path):
    value = block[field]
    at = where(block, field)
    local = base_directory(root, at) / value
    rel = _inside(local, root)
    if rel is None:
        return Problem(f"path {value} ({local.resolve()}) is not contained in the bundle root {root}", at, path)
    if kind == "notebook":
        if not local.is_file():
            return Problem(f"notebook {value} not found. Local notebook references are expected to contain one of "
                           f"the following file extensions: [{', '.join(NOTEBOOK_EXTENSIONS)}]", at, path)
        stem, extension = posixpath.splitext(rel)
        rel = stem if extension in NOTEBOOK_EXTENSIONS else rel
    elif kind == "file" and not local.is_file():
        return Problem(f"file {value} not found", at, path)
    elif kind == "directory" and not local.is_dir():
        return Problem(f"directory {value} not found", at, path)
    remote = file_path if rel == "." else posixpath.join(file_path, rel)
    if hasattr(block, "set"):
        block.set(field, remote, at)
    else:
        block[field] = remote
    return None
