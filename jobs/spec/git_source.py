"""``git_source``: the remote repository a job's tasks read their files from (pure).

- ``check_git_source``: the block itself (Databricks' rules: ``git_url`` and ``git_provider``
  required, the provider one of eight (any case, kept in the SDK's spelling), exactly one of
  ``git_branch``, ``git_tag``, ``git_commit``; ``sparse_checkout.patterns`` a list of strings,
  accepted and not applied: the whole commit is checked out).
- ``check_task_sources``: each task's ``source``: GIT only with a ``git_source``, and then its
  path relative to the repository root, never leaving it with ``..``.
- ``task_source``: the source a task reads its file from (GIT by default with a ``git_source``).
- ``git_ref``: what the job asks for, as (kind, name): ("branch", "main"), ("commit", "abc1...").
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from .checker import Checker

GIT_PROVIDERS = ("gitHub", "gitHubEnterprise", "bitbucketCloud", "bitbucketServer", "gitLab",
                 "gitLabEnterpriseEdition", "azureDevOpsServices", "awsCodeCommit")
_PROVIDER_BY_LOWER = {name.lower(): name for name in GIT_PROVIDERS}
REF_FIELDS = {"git_branch": "branch", "git_tag": "tag", "git_commit": "commit"}
MAX_URL_CHARS = 2048
MAX_REF_CHARS = 255
COMMIT_PATTERN = re.compile(r"[0-9a-fA-F]{4,64}")
# Remote forms git itself reads: a URL with a scheme, scp-like user@host:path, or a local path.
URL_PATTERN = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://\S+|[^\s/:]+@[^\s/:]+:\S+|/\S*)")
# The task fields read from the repository, per task type (sql_task: inside its `file`).
_PASSWORD_IN_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@")
SOURCE_PATHS = {"notebook_task": "notebook_path", "spark_python_task": "python_file",
                "dbt_task": "project_directory", "sql_task": "path"}


def provider_name(value: str) -> str | None:
    """The SDK's spelling of a provider given in any case (None: not one of them)."""
    return _PROVIDER_BY_LOWER.get(value.lower()) if isinstance(value, str) else None


def check_git_source(c: Checker, data: dict) -> None:
    """Problems in ``data["git_source"]``; its provider is rewritten in the SDK's spelling
    (``data`` is the validator's own copy)."""
    block = c.obj(data, "", "git_source")
    if block is None:
        return
    url = c.string(block, "git_source", "git_url", required=True, non_empty=True)
    if url is not None:
        if len(url) > MAX_URL_CHARS:
            c.add("git_source.git_url", f"must be at most {MAX_URL_CHARS} characters")
        elif not URL_PATTERN.fullmatch(url) or url.startswith("-"):
            c.add("git_source.git_url", "must be a repository URL (https://..., ssh://..., file:///...) "
                                        "or an absolute local path")
        elif _PASSWORD_IN_URL.match(url):
            c.add("git_source.git_url", "must not hold a password or token: add it with the Git "
                                        "credentials API (/api/2.0/git-credentials) instead")
    provider = c.string(block, "git_source", "git_provider", required=True)
    if provider is not None:
        if provider_name(provider) is None:
            c.add("git_source.git_provider", f"must be one of {', '.join(GIT_PROVIDERS)} (in any case)")
        else:
            block["git_provider"] = provider_name(provider)
    refs = [name for name in REF_FIELDS if name in block]
    if len(refs) != 1:
        found = f" (found {' and '.join(refs)})" if refs else ""
        c.add("git_source", f"set exactly one of {', '.join(REF_FIELDS)}{found}")
    for name in refs:
        value = c.string(block, "git_source", name, non_empty=True)
        if value is None:
            continue
        if len(value) > MAX_REF_CHARS:
            c.add(f"git_source.{name}", f"must be at most {MAX_REF_CHARS} characters")
        elif name == "git_commit" and not COMMIT_PATTERN.fullmatch(value):
            c.add("git_source.git_commit", "must be a commit hash (4 to 64 hexadecimal digits)")
        elif name != "git_commit" and not _is_ref_name(value):
            c.add(f"git_source.{name}", f"{value!r} is not a valid git {REF_FIELDS[name]} name")
    sparse = c.obj(block, "git_source", "sparse_checkout")
    if sparse is not None:
        c.str_list(sparse, "git_source.sparse_checkout", "patterns")
    for name in block:
        if name not in ("git_url", "git_provider", "sparse_checkout", "git_snapshot", "job_source", *REF_FIELDS):
            c.add(f"git_source.{name}", "is not a field of git_source")


def _is_ref_name(name: str) -> bool:
    """git check-ref-format's rules, the ones a branch or tag name can break."""
    return not (name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")) or ".." in name
                or "//" in name or "@{" in name or name == "@"
                or any(ch in name for ch in " ~^:?*[\\\x7f") or any(ord(ch) < 32 for ch in name))


def git_ref(git_source: dict) -> tuple[str, str]:
    """("branch" | "tag" | "commit", name) of a validated git_source."""
    for field, kind in REF_FIELDS.items():
        if git_source.get(field):
            return kind, git_source[field]
    raise ValueError("git_source names no branch, tag or commit")


def source_block(task: dict, kind: str) -> dict | None:
    """The object holding ``source`` and the path for a task type (sql_task: its ``file``)."""
    block = task.get(kind)
    if kind == "sql_task" and isinstance(block, dict):
        block = block.get("file")
    return block if isinstance(block, dict) and kind in SOURCE_PATHS else None


def task_source(job_settings: dict, task: dict, kind: str) -> str:
    """WORKSPACE or GIT: the task's own ``source``, else GIT when the job has a git_source."""
    block = source_block(task, kind) or {}
    return block.get("source") or ("GIT" if job_settings.get("git_source") else "WORKSPACE")


def uses_git(job_settings: dict, task: dict, kind: str) -> bool:
    return source_block(task, kind) is not None and task_source(job_settings, task, kind) == "GIT"


def check_task_sources(c: Checker, data: dict) -> None:
    """GIT needs the job's git_source; a GIT path is relative to the repository and stays in it."""
    tasks = data.get("tasks")
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(task, dict):
            continue
        _check_task_source(c, data, task, f"tasks[{i}]")
        nested = (task.get("for_each_task") or {}).get("task") if isinstance(task.get("for_each_task"), dict) else None
        if isinstance(nested, dict):
            _check_task_source(c, data, nested, f"tasks[{i}].for_each_task.task")


def _check_task_source(c: Checker, data: dict, task: dict, path: str) -> None:
    for kind, field in SOURCE_PATHS.items():
        block = source_block(task, kind)
        if block is None:
            continue
        at = f"{path}.{kind}" + (".file" if kind == "sql_task" else "")
        if block.get("source") not in (None, "WORKSPACE", "GIT"):
            return  # reported by the task's own check
        if task_source(data, task, kind) != "GIT":
            return
        if not isinstance(data.get("git_source"), dict):
            c.add(f"{at}.source", "GIT needs the job's git_source (or set source to WORKSPACE)")
            return
        value = block.get(field)
        if isinstance(value, str) and value:
            problem = relative_path_problem(value)
            if problem:
                c.add(f"{at}.{field}", problem)


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is no path inside a repository (None: it is one)."""
    if value.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", value):
        return f"{value!r} must be relative to the repository root (source GIT), not absolute"
    normal = posixpath.normpath(value)
    if normal == ".." or normal.startswith("../"):
        return f"{value!r} leads outside the repository with '..'"
    return None


def used_git_source(job_settings: dict, used_commit: str | None) -> dict[str, Any] | None:
    """The run's git_source as runs/get shows it: the job's, with ``git_snapshot.used_commit``."""
    block = job_settings.get("git_source")
    if not isinstance(block, dict):
        return None
    shown = {key: value for key, value in block.items() if key != "git_snapshot"}
    if used_commit:
        shown["git_snapshot"] = {"used_commit": used_commit}
    return shown
