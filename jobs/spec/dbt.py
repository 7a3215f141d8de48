"""dbt_task: its save-time checks (Databricks' rules), the environment it runs in, the profile
generated for its warehouse, its command lines, and the tables its artifacts say it read and
wrote. Pure: no Django, no I/O (the callers read the files and run dbt).

- Environment: dbt-core with both adapters (dbt-duckdb, dbt-postgres), ``duckdb`` pinned to the
  server's version (the embedded warehouse is a DuckDB file the server reads back: a newer
  storage format would lock the server out of it), then the dependencies of the task's job
  environment (``environment_key``) or its ``libraries``, given to the environment builder as the
  task's libraries. A dependency naming one of our dbt packages replaces ours (the author chose
  that version); the duckdb pin stays; Databricks' own adapters are left out.
- Profile: unless ``profiles_directory`` is given, a ``profiles.yml`` with one target named
  after the warehouse (``warehouse_id``, default ``default``): DuckDB (schema ``main``) or
  Postgres (schema ``public``) unless ``schema`` says otherwise. ``catalog`` is not used: a
  warehouse here is one database (DuckDB names its catalog after the file).
- Tables: a model, seed or snapshot that succeeded wrote ``<warehouse>.<schema>.<alias>``; a view
  is a dataset for lineage but not a write for table-update triggers (as for SQL, sql_tables.py);
  an ephemeral model writes nothing. What the written nodes depend on (sources, models, seeds,
  snapshots; through ephemeral models) is what they read, less what the task wrote itself.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from .checker import Checker
from .environments import library_lines

MAX_COMMANDS = 10
DBT_PACKAGES = {"dbt-core": "1.11.16", "dbt-duckdb": "1.11.1", "dbt-postgres": "1.11.0"}
DEFAULT_WAREHOUSE = "default"
DEFAULT_SCHEMAS = {"duckdb": "main", "postgres": "public"}
# Adapters for Databricks itself: they cannot reach a warehouse here, and would only slow the build.
SKIPPED_ADAPTERS = ("dbt-databricks", "dbt-spark")
WRITING_RESOURCES = ("model", "seed", "snapshot")
READ_RESOURCES = ("model", "seed", "snapshot", "source")
POSTGRES_SSL_OPTIONS = ("sslmode", "sslcert", "sslkey", "sslrootcert")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


# --- save time ------------------------------------------------------------------


def check_dbt_task(c: Checker, block: dict, path: str) -> None:
    """Databricks' rules: ``commands`` (1 to 10, each a ``dbt`` command); the rest optional."""
    for name in ("project_directory", "profiles_directory", "schema", "catalog", "warehouse_id"):
        c.string(block, path, name)
    c.choice(block, path, "source", ("WORKSPACE", "GIT"))
    if "commands" not in block:
        c.add(f"{path}.commands", "is required")
        return
    commands = block["commands"]
    if not isinstance(commands, list):
        c.add(f"{path}.commands", "must be a list of strings")
        return
    if not commands:
        c.add(f"{path}.commands", "must not be empty")
    elif len(commands) > MAX_COMMANDS:
        c.add(f"{path}.commands", f"has {len(commands)} commands; at most {MAX_COMMANDS}")
    for i, command in enumerate(commands):
        problem = command_problem(command)
        if problem:
            c.add(f"{path}.commands[{i}]", problem)


def command_problem(command) -> str | None:
    if not isinstance(command, str):
        return "must be a string"
    try:
        words = shlex.split(command)
    except ValueError as exc:  # an unclosed quote
        return f"cannot be read as a command line: {exc}"
    if not words or words[0] != "dbt":
        return f"must start with dbt (got {command!r})"
    return None


# --- the environment ------------------------------------------------------------


def requirement_name(line: str) -> str | None:
    """The normalized project name a requirement line installs, or None (an option, a path)."""
    if line.lstrip().startswith(("-", "/", ".", "~")) or "://" in line:
        return None
    found = _REQUIREMENT_NAME.match(line)
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else None


def environment_task(job_settings: dict, task: dict, *, duckdb_version: str) -> dict:
    """The task as its environment (jobs/spec/environments.py) sees it: ``libraries`` with our
    packages first, then its own dependencies (its job environment's, else its libraries'), each
    line as written (a library's ``pypi.package`` is a requirement line to the builder)."""
    own = library_lines(task.get("libraries") or [])[0]
    key = task.get("environment_key")
    for entry in job_settings.get("environments") or [] if key else []:
        if isinstance(entry, dict) and entry.get("environment_key") == key:
            own = [str(line) for line in (entry.get("spec") or {}).get("dependencies") or []]
    own = [line for line in own if requirement_name(line) not in SKIPPED_ADAPTERS]
    named = {requirement_name(line) for line in own}
    ours = [f"{name}=={version}" for name, version in DBT_PACKAGES.items() if name not in named]
    lines = [*ours, f"duckdb=={duckdb_version}", *own]
    synthesized = {name: value for name, value in task.items() if name != "environment_key"}
    synthesized["libraries"] = [{"pypi": {"package": line}} for line in lines]
    return synthesized


# --- the profile ----------------------------------------------------------------


def warehouse_kind(url: str) -> str | None:
    scheme = url.partition(":")[0].lower()
    return "duckdb" if scheme == "duckdb" else "postgres" if scheme in ("postgres", "postgresql") else None


def duckdb_file(url: str) -> str:
    """``duckdb:///abs/path`` (or ``duckdb:////abs/path``) -> /abs/path (sql.duckdb_path's rule)."""
    path = url[len("duckdb:"):].lstrip("/")
    return ":memory:" if path == ":memory:" else "/" + path


def profile_document(profile_name: str, warehouse_id: str, url: str, schema: str | None = None) -> dict:
    """The profiles.yml (as data: JSON is YAML) for one target, the warehouse, named after it."""
    kind = warehouse_kind(url)
    if kind == "duckdb":
        output = {"type": "duckdb", "path": duckdb_file(url), "schema": schema or DEFAULT_SCHEMAS["duckdb"],
                  "threads": 1}
    elif kind == "postgres":
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        output = {
            "type": "postgres",
            # A socket directory may come as ?host=/var/run/postgresql, as libpq reads it.
            "host": unquote(parts.hostname or "") or query.get("host") or "localhost",
            "port": parts.port or int(query.get("port") or 5432),
            "user": unquote(parts.username or "") or query.get("user") or "postgres",
            "password": unquote(parts.password or "") or query.get("password") or "",
            "dbname": unquote(parts.path.lstrip("/")) or query.get("dbname") or "postgres",
            "schema": schema or DEFAULT_SCHEMAS["postgres"],
            "threads": 4,
            **{name: query[name] for name in POSTGRES_SSL_OPTIONS if query.get(name)},
        }
        if query.get("connect_timeout", "").isdigit():
            output["connect_timeout"] = int(query["connect_timeout"])
    else:
        raise ValueError(f"warehouse '{warehouse_id}' is neither DuckDB nor Postgres")
    return {profile_name: {"target": warehouse_id, "outputs": {warehouse_id: output}}}


# --- command lines --------------------------------------------------------------


def command_arguments(command: str, *, project_dir: str, profiles_dir: str | None) -> list[str]:
    """The arguments after ``dbt`` of one command, with our --project-dir and --profiles-dir
    where the command gives none (a command's own flags win, as on Databricks)."""
    words = shlex.split(command)[1:]
    if not words or words[0].startswith("-"):  # dbt --version, dbt --help: no subcommand to add to
        return words
    for flag, value in (("--project-dir", project_dir), ("--profiles-dir", profiles_dir)):
        if value and not any(word == flag or word.startswith(f"{flag}=") for word in words):
            words += [flag, value]
    return words


def error_text(events: list[dict], limit: int = 4000) -> str:
    """dbt's own error messages from its JSON log events (one command's), without the per-node
    status lines ("1 of 2 ERROR creating ..."), which the messages after them explain."""
    messages = []
    for event in events:
        info = event.get("info") if isinstance(event, dict) else None
        if not isinstance(info, dict) or info.get("level") != "error":
            continue
        name, message = str(info.get("name") or ""), str(info.get("msg") or "").strip()
        if message and not (name.startswith("Log") and name.endswith("Result")) and message not in messages:
            messages.append(message)
    text = "\n".join(messages)
    return text if len(text) <= limit else text[:limit - 15] + "\n(truncated)"


# --- what the artifacts say -----------------------------------------------------


@dataclass(frozen=True)
class DbtTables:
    writes: tuple[str, ...]  # tables (and incremental models, seeds, snapshots): table-update triggers
    views: tuple[str, ...]  # views: lineage only
    reads: tuple[str, ...]


def succeeded_nodes(run_results: dict) -> list[str]:
    """unique_ids of the nodes one command's run_results.json says ran successfully."""
    found = []
    for result in (run_results or {}).get("results") or []:
        if isinstance(result, dict) and result.get("status") == "success" and isinstance(result.get("unique_id"), str):
            found.append(result["unique_id"])
    return found


def tables_of(manifest: dict, succeeded: list[str], warehouse_id: str) -> DbtTables:
    """What the nodes that succeeded wrote and read, named ``<warehouse>.<schema>.<table>``."""
    nodes = manifest.get("nodes") if isinstance(manifest.get("nodes"), dict) else {}
    sources = manifest.get("sources") if isinstance(manifest.get("sources"), dict) else {}
    writes, views, reads = {}, {}, {}
    for unique_id in succeeded:
        node = nodes.get(unique_id)
        if not isinstance(node, dict) or node.get("resource_type") not in WRITING_RESOURCES:
            continue
        materialized = _materialized(node)
        if materialized == "ephemeral":
            continue
        name = _table_name(node, warehouse_id)
        if name:
            (views if materialized == "view" else writes).setdefault(name, None)
        for dependency in _read_nodes(node, nodes, sources, warehouse_id):
            reads.setdefault(dependency, None)
    for name in (*writes, *views):
        reads.pop(name, None)  # made by the task itself (a seed its models read, an incremental model): no input
    return DbtTables(tuple(writes), tuple(views), tuple(reads))


def _materialized(node: dict) -> str:
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    return str(config.get("materialized") or ("seed" if node.get("resource_type") == "seed" else "view"))


def _table_name(node: dict, warehouse_id: str) -> str | None:
    schema = node.get("schema")
    table = node.get("alias") or node.get("identifier") or node.get("name")
    if not isinstance(schema, str) or not isinstance(table, str) or not schema or not table:
        return None
    return f"{warehouse_id}.{schema}.{table}".lower()


def _read_nodes(node: dict, nodes: dict, sources: dict, warehouse_id: str, seen: set | None = None) -> list[str]:
    """The tables a node reads: its dependencies, looking through ephemeral models."""
    seen = set() if seen is None else seen
    found = []
    depends_on = node.get("depends_on") if isinstance(node.get("depends_on"), dict) else {}
    for unique_id in depends_on.get("nodes") or []:
        if not isinstance(unique_id, str) or unique_id in seen:
            continue
        seen.add(unique_id)
        upstream = sources.get(unique_id) if unique_id.startswith("source.") else nodes.get(unique_id)
        if not isinstance(upstream, dict) or upstream.get("resource_type") not in READ_RESOURCES:
            continue
        if upstream.get("resource_type") != "source" and _materialized(upstream) == "ephemeral":
            found += _read_nodes(upstream, nodes, sources, warehouse_id, seen)
            continue
        name = _table_name(upstream, warehouse_id)
        if name:
            found.append(name)
    return found
