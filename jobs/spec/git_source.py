"""``git_source``: the remote repository a job's tasks read their files from (pure).

- ``check_git_source``: the block itself (Databricks' rules: ``git_url`` and ``git_provider``
  required, the provider one of eight (any case, kept in the SDK's spelling), exactly one of
  ``git_branch``, ``git_tag``, ``git_commit`` (a full hash); ``sparse_checkout.patterns`` a list of strings,
  accepted and not applied: the whole commit is checked out).
- ``check_task_sources``: each task's ``source``: GIT only with a ``git_source``, and then its
  path relative to the repository root, never leaving it with ``..``.
- ``task_source``: the source a task reads its file from (GIT by default with a ``git_source``).
- ``git_ref``: what the job asks for, as (kind, name): ("branch", "main"), ("commit", "abc1...").
- ``local_repository_path`` and ``local_repository_refusal``: a ``git_url`` naming a directory of
  this machine, and whether the server's settings let a job read it (the caller resolves symlinks).
- ``credential_refusal``: why a provider's credential must not go to a URL (None: it may).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Any
from urllib.parse import unquote

from .checker import Checker

GIT_PROVIDERS = ("gitHub", "gitHubEnterprise", "bitbucketCloud", "bitbucketServer", "gitLab",
                 "gitLabEnterpriseEdition", "azureDevOpsServices", "awsCodeCommit")
_PROVIDER_BY_LOWER = {name.lower(): name for name in GIT_PROVIDERS}
REF_FIELDS = {"git_branch": "branch", "git_tag": "tag", "git_commit": "commit"}
MAX_URL_CHARS = 2048
MAX_REF_CHARS = 255
# A full hash only: a short one would be resolved from whatever the server's cache holds.
COMMIT_PATTERN = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
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
            c.add("git_source.git_commit", "must be a full commit hash (40 hexadecimal digits, or 64 "
                                            "for a SHA-256 repository)")
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


def local_repository_path(url: str) -> str | None:
    """The directory a ``git_url`` names on this machine, as git reads it (a ``file://`` URL is
    percent-decoded and its host ignored); None for a remote."""
    if url.startswith("/"):
        return url
    if url[:7].lower() != "file://":
        return None
    rest = unquote(url[7:])
    return rest[rest.index("/"):] if "/" in rest else ""


def local_repository_refusal(given: str, real_paths, allowed_roots, server_roots) -> str | None:
    """Why the local repository ``given`` may not be read (None: it may): each of ``real_paths``
    (the directories git may open for it, symlinks resolved) must lie inside one of
    ``allowed_roots`` (LAKEFLOW_GIT_LOCAL_ROOTS) and in none of ``server_roots``."""
    allowed = [str(root) for root in allowed_roots]
    if not given.startswith("/"):
        return "a file:// URL must name a directory (file:///path/to/repository)"
    if not allowed:
        return (f"{given} is a local repository, and this server reads none: its administrator may allow "
                "directories with LAKEFLOW_GIT_LOCAL_ROOTS")
    for real in real_paths:
        if any(_inside(real, str(root)) for root in server_roots):
            return f"{given} lies in the server's own files (LAKEFLOW_HOME or LAKEFLOW_TASK_HOME)"
        # Strictly inside: git also tries "<path>.git", which would be beside a root itself.
        if not any(real != root and _inside(real, root) for root in allowed):
            return f"{given} is outside the directories of LAKEFLOW_GIT_LOCAL_ROOTS ({', '.join(allowed)})"
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# Where a cloud provider's credential may go (https only); self-hosted providers take https to
# any host, or http to this machine (a test server, a local mirror).
CREDENTIAL_HOSTS = {
    "gitHub": (r"github\.com", "github.com"),
    "gitLab": (r"gitlab\.com", "gitlab.com"),
    "bitbucketCloud": (r"bitbucket\.org", "bitbucket.org"),
    "azureDevOpsServices": (r"dev\.azure\.com|[a-z0-9-]+\.visualstudio\.com",
                            "dev.azure.com or <organization>.visualstudio.com"),
    "awsCodeCommit": (r"git-codecommit\.[a-z]{2}(?:-[a-z]+)+-\d+\.amazonaws\.com",
                      "git-codecommit.<region>.amazonaws.com"),
}
SELF_HOSTED_PROVIDERS = ("gitHubEnterprise", "bitbucketServer", "gitLabEnterpriseEdition")
# Strict on purpose: a URL that git and Python could read as two different hosts gets no credential.
_HTTP_URL = re.compile(r"(?P<scheme>https?)://(?:[A-Za-z0-9._~%+-]*@)?"
                       r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?(?:/\S*)?", re.I)


def credential_refusal(provider: str, url: str) -> str | None:
    """Why ``provider``'s credential must not be sent to ``url`` (None: it may)."""
    match = _HTTP_URL.fullmatch(url)
    scheme, host = (match["scheme"].lower(), match["host"].lower()) if match else (None, None)
    if provider in CREDENTIAL_HOSTS:
        pattern, hosts = CREDENTIAL_HOSTS[provider]
        if scheme == "https" and re.fullmatch(pattern, host):
            return None
        return f"{provider} credentials are sent only over https to {hosts}"
    if provider in SELF_HOSTED_PROVIDERS:
        if scheme == "https" or (scheme == "http" and _is_loopback(host)):
            return None
        return f"{provider} credentials are sent only over https (or http to this machine)"
    return f"{provider!r} is not a Git provider"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def used_git_source(job_settings: dict, used_commit: str | None) -> dict[str, Any] | None:
    """The run's git_source as runs/get shows it: the job's, with ``git_snapshot.used_commit``."""
    block = job_settings.get("git_source")
    if not isinstance(block, dict):
        return None
    shown = {key: value for key, value in block.items() if key != "git_snapshot"}
    if used_commit:
        shown["git_snapshot"] = {"used_commit": used_commit}
    return shown
