"""dbt_task: ``prepare`` in the worker (paths, warehouse, the runner spec), ``run`` in the task
process (launched by runner.py in the task's dbt environment, jobs/spec/dbt.py).

``run`` writes the profile (owner-only: a Postgres URL may hold a password) unless the task gives
``profiles_directory``, then runs each command as its own ``dbt`` process in the project
directory, in order; its output goes to the attempt's log. dbt writes its target (manifest.json,
run_results.json, compiled SQL) and its JSON log under the attempt's ``dbt/`` directory, not into
the project (which other runs share and the task user may not write). The first command that
fails fails the task with dbt's own error messages. After every command its run_results.json is
kept (``dbt/commands/<n>/``): each command overwrites the last. At the end,
``dbt-artifacts.tar.gz`` (beside the log) holds them with the final manifest.json and dbt's log
(runs/get-output's ``dbt_output``), and the result reports the tables the models, seeds and
snapshots that succeeded wrote and read.

Standard library only besides jobs.spec.dbt (pure); nothing here imports Django.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from jobs.spec import dbt as spec

from .errors import LaunchError

DBT_DIR = "dbt"
# Beside output.log, not under dbt/: the server reads it, and dbt/ is the task's to replace by a link.
ARCHIVE = "dbt-artifacts.tar.gz"
PROJECT_FILE = "dbt_project.yml"
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024  # read back from the task's directory; larger ones are left out


def artifacts_path(log_path: str) -> str:
    """The artifacts archive of an attempt, beside its log (the server's side)."""
    return str(Path(log_path).with_name(ARCHIVE))


# --- prepare (worker side) ---------------------------------------------------------------------

@functools.cache
def server_duckdb_version() -> str:
    """The DuckDB the server reads the embedded warehouse with: the dbt environment pins it."""
    from importlib.metadata import version

    return version("duckdb")


def prepare(body: dict, *, files, attempt_dir: Path, warehouses: dict) -> dict:
    """Check the project directory and the warehouse; return the JSON-able part of the runner spec."""
    # source GIT: `files` is the run's checkout (launch.py), project_directory relative to its root.
    commands = body.get("commands")
    problems = [spec.command_problem(c) for c in commands] if isinstance(commands, list) and commands else \
        ["is required"]
    if any(problems):
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"dbt_task.commands {next(p for p in problems if p)}")
    project_dir = _directory(body.get("project_directory"), "dbt_task.project_directory", files)
    if not os.path.isfile(os.path.join(project_dir, PROJECT_FILE)):
        raise LaunchError("RESOURCE_NOT_FOUND",
                          f"dbt_task.project_directory {project_dir} has no {PROJECT_FILE}")
    profiles_dir = None
    if body.get("profiles_directory"):
        given = body["profiles_directory"]
        # Relative to the project, as Databricks reads it (the project is the root of its files).
        # Joined to the project's path as given (/Workspace/..., or relative to the workspace root),
        # so that it is located, and confined, the way the project was.
        located = given if os.path.isabs(given) or given.startswith(("/", "dbfs:")) else \
            os.path.join(body.get("project_directory") or "", given)
        profiles_dir = _directory(located, "dbt_task.profiles_directory", files)
    warehouse_id = body.get("warehouse_id") or spec.DEFAULT_WAREHOUSE
    url = warehouses.get(warehouse_id)
    if profiles_dir is None and not url:
        configured = ", ".join(sorted(warehouses)) or "none"
        raise LaunchError("RESOURCE_NOT_FOUND",
                          f"SQL warehouse '{warehouse_id}' is not configured; configured: {configured} "
                          "(set LAKEFLOW_WAREHOUSES)")
    if url and spec.warehouse_kind(url) is None:
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"SQL warehouse '{warehouse_id}' has an unsupported URL scheme "
                          f"{url.partition(':')[0]!r}; dbt runs on duckdb:/// and postgresql:// warehouses")
    # With the author's own profiles, tables are named after warehouse_id only when it is given.
    named_after = warehouse_id if profiles_dir is None or body.get("warehouse_id") else None
    return {
        "commands": list(commands),
        "project_dir": project_dir,
        "profiles_dir": profiles_dir,
        "warehouse_id": named_after,
        "warehouse_url": url if profiles_dir is None else None,
        "schema": body.get("schema") or None,
        "catalog": body.get("catalog") or None,
        "dbt_dir": str(Path(attempt_dir) / DBT_DIR),
        "cwd": project_dir,
    }


def _directory(given, what: str, files) -> str:
    if not isinstance(given, str) or not given:
        raise LaunchError("INVALID_RUN_CONFIGURATION", f"{what} is required (the directory with {PROJECT_FILE})")
    path = files.locate(given, what)
    if not os.path.exists(path):
        raise LaunchError("RESOURCE_NOT_FOUND", f"{what} {path} does not exist")
    if not os.path.isdir(path):
        raise LaunchError("RESOURCE_NOT_FOUND", f"{what} {path} is not a directory")
    return path


# --- run (task process) ------------------------------------------------------------------------

def run(task_spec: dict) -> dict:
    """Run the commands; the result dict for the runner (with ``dbt_ran`` for the worker)."""
    dbt_dir = Path(task_spec["dbt_dir"])
    target, logs = dbt_dir / "target", dbt_dir / "logs"
    for directory in (dbt_dir, target, logs):
        directory.mkdir(mode=0o700, exist_ok=True)
    # A redelivered attempt starts afresh: no run results or archive of an earlier process.
    shutil.rmtree(dbt_dir / "commands", ignore_errors=True)
    _unlink(dbt_dir.parent / ARCHIVE)
    executable = _dbt_executable()
    if executable is None:
        message = "dbt is not installed in the task's environment"
        sys.stderr.write(f"Error: {message}\n")
        return {"error": message, "error_code": "LIBRARY_INSTALLATION_ERROR", "exit_code": 1}
    profiles_dir = task_spec.get("profiles_dir") or _write_profile(task_spec, dbt_dir)
    env = {**os.environ, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(logs), "DBT_LOG_FORMAT_FILE": "json",
           "DBT_USE_COLORS": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    commands = task_spec["commands"]
    warehouse_file = _warehouse_file(task_spec)
    succeeded, failure = [], None
    for n, command in enumerate(commands, 1):
        arguments = spec.command_arguments(command, project_dir=task_spec["project_dir"], profiles_dir=profiles_dir)
        print(f"\n=== dbt command {n} of {len(commands)}: {command}", flush=True)
        log_offset = _size(logs / "dbt.log")
        _unlink(target / "run_results.json")
        with _warehouse_lock(warehouse_file):
            code = subprocess.run([executable, *arguments], cwd=task_spec["project_dir"], env=env,
                                  check=False).returncode
        results = _read_json(target / "run_results.json")
        if results is not None:
            kept = dbt_dir / "commands" / str(n)
            kept.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(target / "run_results.json", kept / "run_results.json")
            succeeded += spec.succeeded_nodes(results)
        if code != 0:
            text = spec.error_text(_json_lines(logs / "dbt.log", log_offset)) or f"dbt exited with code {code}"
            failure = f"dbt command {n} of {len(commands)} ({command}) failed:\n{text}"
            break
    result = {"exit_code": 0} if failure is None else {"error": failure, "exit_code": 1}
    manifest = _read_json(target / "manifest.json")
    if task_spec.get("warehouse_id") and manifest and succeeded:
        tables = spec.tables_of(manifest, succeeded, task_spec["warehouse_id"])
        result["dbt_ran"] = {"warehouse_id": task_spec["warehouse_id"], "writes": list(tables.writes),
                             "views": list(tables.views), "reads": list(tables.reads)}
    _archive(dbt_dir)
    if failure is not None:
        sys.stderr.write(f"Error: {failure}\n")
    return result


def _write_profile(task_spec: dict, dbt_dir: Path) -> str:
    """profiles.yml for the warehouse (JSON is YAML), owner-only: it may hold a password."""
    profile_name = _project_profile(task_spec["project_dir"])
    document = spec.profile_document(profile_name, task_spec["warehouse_id"], task_spec["warehouse_url"],
                                     task_spec.get("schema"))
    if task_spec.get("catalog"):
        print(f"dbt_task.catalog {task_spec['catalog']!r} is not used: a warehouse here is one database", flush=True)
    profiles = dbt_dir / "profiles"
    profiles.mkdir(mode=0o700, exist_ok=True)
    path = profiles / "profiles.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    return str(profiles)


def _project_profile(project_dir: str) -> str:
    """The profile dbt_project.yml names (dbt's default name when it names none)."""
    try:
        import yaml  # dbt's own dependency, in the task's environment

        with open(os.path.join(project_dir, PROJECT_FILE), encoding="utf-8") as f:
            project = yaml.safe_load(f.read(1024 * 1024))
    except Exception:  # noqa: BLE001 (unreadable or not YAML: dbt reads it next and says what is wrong)
        return "default"
    name = project.get("profile") if isinstance(project, dict) else None
    return str(name) if name else "default"


def _dbt_executable() -> str | None:
    """The environment's dbt (beside its interpreter), else the first on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "dbt")
    return here if os.access(here, os.X_OK) else shutil.which("dbt")


def _warehouse_file(task_spec: dict) -> str | None:
    url = task_spec.get("warehouse_url")
    if not url or spec.warehouse_kind(url) != "duckdb":
        return None
    path = spec.duckdb_file(url)
    if path == ":memory:":
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


class _warehouse_lock:
    """``<file>.lock``, as sql tasks hold it (runs/executors/sql.py): DuckDB lets one process at a
    time open a file for writing, so tasks on one file take turns."""

    def __init__(self, path):
        self.path, self.fd = path, None

    def __enter__(self):
        if self.path:
            import fcntl

            self.fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("waiting for the warehouse lock", flush=True)
                fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info):
        if self.fd is not None:
            os.close(self.fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _read_json(path: Path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read(MAX_ARTIFACT_BYTES))
    except (OSError, ValueError):
        return None


def _json_lines(path: Path, offset: int) -> list:
    """The JSON events dbt logged after ``offset`` (one command's)."""
    events = []
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f.read(MAX_ARTIFACT_BYTES).splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    return events


def _archive(dbt_dir: Path) -> None:
    """dbt-artifacts.tar.gz: target/manifest.json, target/run_results.json (the last command's),
    commands/<n>/run_results.json and logs/dbt.log, as far as they exist."""
    members = [dbt_dir / "target" / "manifest.json", dbt_dir / "target" / "run_results.json",
               *sorted((dbt_dir / "commands").glob("*/run_results.json"), key=lambda p: int(p.parent.name)),
               dbt_dir / "logs" / "dbt.log"]
    partial = dbt_dir / f".{ARCHIVE}.{os.getpid()}"
    with tarfile.open(partial, "w:gz") as archive:
        for member in members:
            if member.is_file() and not member.is_symlink():
                archive.add(member, arcname=str(member.relative_to(dbt_dir)))
    os.replace(partial, dbt_dir.parent / ARCHIVE)
