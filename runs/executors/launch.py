"""Turn one resolved task into the command line of its attempt process (runs in the worker).

``prepare_attempt`` checks what can be checked cheaply (the script exists, the task type is
supported), writes ``spec.json`` for ``runner.py`` into the attempt directory and returns a
``LaunchSpec``; ``supervisor.supervise`` starts and watches the process.

Standard library only: nothing in ``runs/executors`` imports Django or the project.
"""

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from jobs.spec import task_types

from .errors import LaunchError
from .files import TaskFiles, create_for_server
from .git import CheckoutFiles
from .workspace_paths import ROOTS_ENV

RUNNER_PATH = str(Path(__file__).resolve().with_name("runner.py"))

# ``python runner.py SPEC`` works too, but Python never caches the bytecode of a script it runs:
# compiling runner.py costs ~4 ms per task here. Loading it as a module reuses __pycache__.
RUNNER_BOOTSTRAP = (
    "import sys\n"
    "from importlib.machinery import SourceFileLoader\n"
    "if sys.path[:1] == ['']: del sys.path[0]\n"  # -c puts the cwd first; a script does not
    "runner = type(sys)('_lakeflow_runner')\n"
    "runner.__file__ = sys.argv[1]\n"
    "SourceFileLoader(runner.__name__, runner.__file__).exec_module(runner)\n"
    "sys.exit(runner.main(sys.argv[1:]))\n"
)

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
VALUES_FILE = "values.json"
LINEAGE_FILE = "lineage.jsonl"

TASK_VALUES_PATH_ENV = "LAKEFLOW_TASK_VALUES_PATH"
"""Where the task's values go; a shell task may write a JSON object there itself."""

LINEAGE_PATH_ENV = "LAKEFLOW_LINEAGE_PATH"
"""Where dbutils.lineage.record appends what the task read and wrote; a shell task may append
JSON lines ``{"reads": [...], "writes": [...]}`` there itself."""

ATTEMPT_DIR_ENV = "LAKEFLOW_ATTEMPT_DIR"
TASK_KEY_ENV = "LAKEFLOW_TASK_KEY"

SUPPORTED_TYPES = ("spark_python_task", "python_wheel_task", "shell_command_task", "notebook_task", "sql_task",
                   "dbt_task")

_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


# What a task process sees of the server's environment: enough to find programs and speak the
# locale, never the server's secrets (SECRET_KEY, DATABASE_URL, REDIS_URL, warehouse URLs, the admin
# password). Operators add names with LAKEFLOW_TASK_ENV; jobs declare environment_variables.
ALLOWED_SERVER_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR")


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]
    cwd: str
    env: dict[str, str]
    result_path: str
    values_path: str
    spec_path: str | None  # None: no runner (shell tasks)
    user: object = None  # the OS user to start the process as (uid, gid, name); None: the server's
    executed_path: str | None = None  # notebook tasks: where the runner saves the executed notebook
    lineage_path: str | None = None  # where dbutils.lineage.record appends what the task read and wrote


def prepare_attempt(
    task: dict,
    *,
    attempt_dir: Path,
    workspace_root: Path | None = None,
    python: str = sys.executable,
    widgets: dict[str, str] | None = None,
    upstream_values: dict[str, dict] | None = None,
    env: dict[str, str] | None = None,
    warehouses: dict[str, str] | None = None,
    user=None,
    other_roots: tuple = (),
    private_roots: tuple = (),
    server_variables: tuple = (),
    fs_roots=None,
    files: TaskFiles | None = None,
    git_checkout: str | None = None,
    system_tables: dict | None = None,
) -> LaunchSpec:
    """Prepare one attempt of ``task`` (a Jobs API task dict, references already resolved).

    ``user`` (with ``uid``, ``gid``, ``name``, ``home``, ``switch``) is who the process runs as;
    ``env`` the variables the job declared for it; ``server_variables`` names of the server's own
    variables the operator lets tasks see besides ALLOWED_SERVER_VARIABLES. Task files must lie in
    ``workspace_root`` or ``other_roots`` and never in ``private_roots``; ``files`` gives all of
    these at once (the worker's TaskFiles, which its setup phase used too). ``git_checkout`` is the
    run's commit checked out (runs/git_checkouts.py) when the task reads its file from git: its
    path is then relative to that tree and must stay in it. ``system_tables`` ({url, token}) is where a
    SQL task's queries of the system tables are answered (runs/attempt_credentials.py)."""
    task_type = task_type_of(task)
    body = task[task_type]
    attempt_dir = Path(attempt_dir).resolve()
    if files is None:
        files = TaskFiles(Path(workspace_root).resolve(), tuple(Path(r) for r in other_roots),
                          tuple(Path(r) for r in private_roots), fs_roots)
    workspace_root = Path(files.workspace_root).resolve()
    source_files = _source_files(task_type, body, files, git_checkout)
    switch_to = user if getattr(user, "switch", False) else None

    if task_type == "spark_python_task":
        python_file = _resolve_python_file(body.get("python_file"), source_files)
        runner_spec = {
            "kind": "python_file",
            "python_file": python_file,
            "argv": [python_file, *_string_list(body, "parameters", task_type)],
        }
        cwd = os.path.dirname(python_file)
    elif task_type == "python_wheel_task":
        package_name = _required_string(body, "package_name", task_type)
        entry_point = _required_string(body, "entry_point", task_type)
        named = body.get("named_parameters") or {}
        if not isinstance(named, dict):
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"{task_type}.named_parameters must be an object")
        runner_spec = {
            "kind": "python_wheel",
            "package_name": package_name,
            "entry_point": entry_point,
            "argv": [
                entry_point,
                *_string_list(body, "parameters", task_type),
                *(f"--{name}={_as_string(value, f'{task_type}.named_parameters.{name}')}"
                  for name, value in named.items()),
            ],
        }
        cwd = _existing_dir(workspace_root)
    elif task_type == "shell_command_task":
        command = _required_string(body, "command", task_type)
        parameters = _string_list(body, "parameters", task_type)
        runner_spec = None
        cwd = _existing_dir(workspace_root)
    elif task_type == "notebook_task":
        from . import notebook

        runner_spec = {"kind": "notebook", **notebook.prepare(body, files=source_files, attempt_dir=attempt_dir)}
        cwd = runner_spec.get("cwd") or _existing_dir(workspace_root)
    elif task_type == "sql_task":
        from . import sql

        runner_spec = {"kind": "sql", **sql.prepare(body, files=source_files, attempt_dir=attempt_dir,
                                                     warehouses=warehouses or {}, system_tables=system_tables)}
        cwd = _existing_dir(workspace_root)
    elif task_type == "dbt_task":
        from . import dbt

        runner_spec = {"kind": "dbt", **dbt.prepare(body, files=source_files, attempt_dir=attempt_dir,
                                                     warehouses=warehouses or {})}
        cwd = runner_spec["cwd"]
    else:
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"{task_type} tasks are not supported by this executor yet")

    _make_attempt_dir(attempt_dir, switch_to)
    result_path = str(attempt_dir / RESULT_FILE)
    values_path = str(attempt_dir / VALUES_FILE)
    lineage_path = str(attempt_dir / LINEAGE_FILE)
    # A redelivered attempt reuses its directory: never let it read an earlier process's files.
    for stale in (result_path, values_path, lineage_path):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass

    task_env = {name: value for name, value in os.environ.items()
                if name in ALLOWED_SERVER_VARIABLES or name.startswith("LC_") or name in server_variables}
    task_env.update(_identity_variables(user, attempt_dir))
    task_env.update(env or {})
    task_env.update({
        "PYTHONUNBUFFERED": "1",  # the log shows output as it happens
        TASK_VALUES_PATH_ENV: values_path,
        LINEAGE_PATH_ENV: lineage_path,
        ATTEMPT_DIR_ENV: str(attempt_dir),
    })
    if task.get("task_key"):
        task_env[TASK_KEY_ENV] = str(task["task_key"])
    if files.fs_roots is not None:  # dbutils.fs and open() in the task map Databricks paths with them
        task_env[ROOTS_ENV] = files.fs_roots.to_env()

    if runner_spec is None:
        # Parameters become "$1".."$n": they never pass through the shell parser.
        return LaunchSpec(
            argv=["bash", "-c", command, "lakeflow-task", *parameters],
            cwd=cwd,
            env=task_env,
            result_path=result_path,
            values_path=values_path,
            spec_path=None,
            user=switch_to,
            lineage_path=lineage_path,
        )

    runner_spec.update({
        "task_key": task.get("task_key"),
        "widgets": dict(widgets or {}),
        "upstream_values": dict(upstream_values or {}),
        "result_path": result_path,
        "values_path": values_path,
        "lineage_path": lineage_path,
    })
    spec_path = str(attempt_dir / SPEC_FILE)
    # Owner-only (the task's user reads it): a SQL task's spec holds its warehouse's URL.
    with open(create_for_server(spec_path), "w", encoding="utf-8") as f:
        if switch_to is not None:
            os.fchown(f.fileno(), switch_to.uid, switch_to.gid)
        json.dump(runner_spec, f, ensure_ascii=False, indent=1)
    return LaunchSpec(
        argv=[python, "-c", RUNNER_BOOTSTRAP, RUNNER_PATH, spec_path],
        cwd=cwd,
        env=task_env,
        result_path=result_path,
        values_path=values_path,
        spec_path=spec_path,
        user=switch_to,
        executed_path=runner_spec.get("executed_path"),
        lineage_path=lineage_path,
    )


def _source_files(task_type: str, body: dict, files: TaskFiles, git_checkout: str | None):
    """Where the task's own file is looked up: the checkout for source GIT, else the task roots."""
    block = body.get("file") if task_type == "sql_task" else body
    source = (block or {}).get("source") if isinstance(block, dict) else None
    if git_checkout is not None and source != "WORKSPACE":
        return CheckoutFiles(Path(git_checkout), files.fs_roots)
    if source == "GIT":
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"{task_type}.source GIT needs the job's git_source (or set source to WORKSPACE)")
    return files


def _make_attempt_dir(attempt_dir: Path, switch_to) -> None:
    """The run's directory enterable but not listable (tasks of other runs cannot find each
    other's), the attempt's own its task user's alone."""
    attempt_dir.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
    attempt_dir.mkdir(mode=0o700, exist_ok=True)
    if switch_to is not None:
        os.chown(attempt_dir, switch_to.uid, switch_to.gid, follow_symlinks=False)


def _identity_variables(user, attempt_dir: Path) -> dict[str, str]:
    """HOME, USER and LOGNAME of whoever the task runs as."""
    if not getattr(user, "switch", False):
        import pwd

        entry = pwd.getpwuid(os.geteuid())
        return {"HOME": os.environ.get("HOME") or entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}
    # All tasks share the task user: a HOME of the attempt's own, and no user site-packages, so
    # that no task leaves behind dotfiles, pip settings or .pth files that run in later tasks.
    return {"HOME": str(attempt_dir), "USER": user.name, "LOGNAME": user.name, "PYTHONNOUSERSITE": "1"}


def task_type_of(task: dict) -> str:
    """The task's type key, e.g. ``spark_python_task`` (jobs/spec/task_types.py's rule)."""
    found = task_types.task_type_of(task)
    if found is None:
        present = [key for key in task if key in task_types.TASK_TYPES] or ["none"]
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"A task needs exactly one task type; found {', '.join(present)}")
    return found


def _resolve_python_file(python_file, files: TaskFiles) -> str:
    """An absolute path, a local ``file://`` URI, or a path relative to the workspace root, inside
    the workspace root (or another allowed root) once symlinks and ``..`` are resolved.

    ``/Workspace/...``, ``/Volumes/...`` and ``dbfs:/...`` paths map to their roots (TaskFiles);
    remote URIs (``s3:``, ...) are rejected.
    """
    if not isinstance(python_file, str) or not python_file:
        raise LaunchError("INVALID_RUN_CONFIGURATION", "spark_python_task.python_file is required")
    scheme = _URI_SCHEME.match(python_file)
    if scheme and scheme.group(1).lower() == "file":
        uri = urlparse(python_file)
        if uri.netloc not in ("", "localhost"):
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"python_file {python_file} is on another host; "
                              "only local file:// URIs are supported")
        path = unquote(uri.path)
    elif scheme and scheme.group(1).lower() != "dbfs":
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"python_file {python_file}: {scheme.group(1)}: URIs are not supported; "
                          "use an absolute path, a dbfs:/, /Volumes/ or /Workspace/ path, a file:// URI "
                          "or a path relative to the workspace")
    else:
        path = python_file
    path = files.locate(path, "python_file")
    if not os.path.exists(path):
        raise LaunchError("RESOURCE_NOT_FOUND", f"python_file {path} does not exist")
    if not os.path.isfile(path):
        raise LaunchError("RESOURCE_NOT_FOUND", f"python_file {path} is not a file")
    return path


def _existing_dir(path: Path) -> str:
    if not path.is_dir():
        raise LaunchError("RESOURCE_NOT_FOUND", f"workspace root {path} does not exist")
    return str(path)


def _required_string(body: dict, name: str, task_type: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise LaunchError("INVALID_RUN_CONFIGURATION", f"{task_type}.{name} is required")
    return value


def _string_list(body: dict, name: str, task_type: str) -> list[str]:
    values = body.get(name) or []
    if not isinstance(values, list):
        raise LaunchError("INVALID_RUN_CONFIGURATION", f"{task_type}.{name} must be a list")
    return [_as_string(value, f"{task_type}.{name}[{i}]") for i, value in enumerate(values)]


def _as_string(value, where: str) -> str:
    # Numbers are accepted as their text (JSON authors write [1, 2]); anything else is a mistake.
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise LaunchError("INVALID_RUN_CONFIGURATION",
                      f"{where} must be a string, not {type(value).__name__}")
