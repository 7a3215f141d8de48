"""``sql_task``: run a SQL file or inline query on a configured warehouse (DuckDB or Postgres).

``prepare`` runs in the worker (cheap checks, no database); ``run`` runs in the task process
(``runner.py``) and returns the result dict the runner writes for the worker:

- statements are split with sqlparse and run one by one, each committing on its own as in
  Databricks SQL (``BEGIN``/``COMMIT`` in the file still group statements);
- ``:name`` parameter markers are bound by the driver, never pasted into the text;
- the rows of the last statement that returned rows become the preview (``sql_output``);
- a statement naming ``system.lakeflow.*`` or ``system.access.*`` is a query of the system tables:
  the server answers it (system_tables/api.py) as the run's run-as identity, with the attempt's
  credential from the spec; this process never sees our database;
- ``sql_ran`` lists the statements that ran, in order, on failure too, with the rows each wrote
  (where the driver says) and the warehouse's columns: the worker reads which tables they wrote
  with sqlglot (runs/sql_tables.py) for table-update triggers, the lineage app what they read and
  wrote, column by column.

The database drivers are imported where they are used: the worker imports this module for
``prepare`` only.
"""

import base64
import datetime
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sqlparse import tokens as T
from sqlparse.engine import FilterStack

from .errors import LaunchError

MAX_PREVIEW_ROWS = 1000
MAX_PREVIEW_BYTES = 48 * 1024
LOG_PREVIEW_ROWS = 20
_LOG_CELL_CHARS = 40
_LOG_STATEMENT_CHARS = 120
_CONNECT_TIMEOUT_SECONDS = 30

_DUCKDB_SCHEME = "duckdb:"
_POSTGRES_SCHEMES = ("postgresql:", "postgres:")
_DUCKDB_MEMORY = ":memory:"
# Non-query statements on DuckDB answer with one of these single columns; they are not rows.
_DUCKDB_STATUS_COLUMNS = (["Count"], ["Success"])
MAX_SCHEMA_COLUMNS = 5000  # of the warehouse's columns reported for column lineage


# --- prepare (worker side) ---------------------------------------------------------------------

def prepare(body: dict, *, files, attempt_dir: Path, warehouses: dict, system_tables: dict | None = None) -> dict:
    """Check the task's SQL source and warehouse; return the JSON-able part of the runner spec.
    ``system_tables`` ({url, token}) is where statements over system tables are answered."""
    for unsupported in ("alert", "dashboard"):
        if body.get(unsupported) is not None:
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"sql_task.{unsupported} is not supported: use sql_task.file or "
                              "sql_task.query.query_text")
    warehouse_id = body.get("warehouse_id")
    if not isinstance(warehouse_id, str) or not warehouse_id:
        raise LaunchError("INVALID_RUN_CONFIGURATION", "sql_task.warehouse_id is required")
    return {
        "warehouse_id": warehouse_id,
        "warehouse_url": _warehouse_url(warehouse_id, warehouses),
        **_sql_source(body, files),
        "parameters": _parameters(body),
        "system_tables": system_tables,
    }


def _warehouse_url(warehouse_id: str, warehouses: dict) -> str:
    url = warehouses.get(warehouse_id)
    if not url:
        configured = ", ".join(sorted(warehouses)) or "none"
        raise LaunchError("RESOURCE_NOT_FOUND",
                          f"SQL warehouse '{warehouse_id}' is not configured; configured: "
                          f"{configured} (set LAKEFLOW_WAREHOUSES)")
    if not url.startswith((_DUCKDB_SCHEME, *_POSTGRES_SCHEMES)):
        # Only the scheme: the rest of the URL may hold a password.
        scheme = url.partition(":")[0]
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"SQL warehouse '{warehouse_id}' has an unsupported URL scheme "
                          f"{scheme!r}; use duckdb:///path or postgresql://")
    return url


def _sql_source(body: dict, files) -> dict:
    """{"sql_file": path} or {"sql_text": text}."""
    file, query = body.get("file"), body.get("query")
    if (file is None) == (query is None):
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          "sql_task needs exactly one of file or query")
    if file is not None:
        return {"sql_file": _sql_file(file, files)}
    return {"sql_text": _query_text(query)}


def _sql_file(file, files) -> str:
    if not isinstance(file, dict) or not isinstance(file.get("path"), str) or not file["path"]:
        raise LaunchError("INVALID_RUN_CONFIGURATION", "sql_task.file.path is required")
    path = files.locate(file["path"], "sql_task.file.path")  # source GIT: `files` is the checkout (launch.py)
    if not os.path.isfile(path):
        raise LaunchError("RESOURCE_NOT_FOUND", f"SQL file {path} does not exist")
    return path


def _query_text(query) -> str:
    if isinstance(query, dict) and query.get("query_id") is not None:
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          "saved queries (query_id) are not supported; "
                          "use query.query_text or file.path")
    text = query.get("query_text") if isinstance(query, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise LaunchError("INVALID_RUN_CONFIGURATION", "sql_task.query.query_text is required")
    return text


def _parameters(body: dict) -> dict[str, str]:
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise LaunchError("INVALID_RUN_CONFIGURATION", "sql_task.parameters must be an object")
    for name, value in parameters.items():
        # Numbers are accepted as their text (JSON authors write {"n": 3}), as for other tasks.
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"sql_task.parameters.{name} must be a string, "
                              f"not {type(value).__name__}")
    return {str(name): str(value) for name, value in parameters.items()}


# --- statements and parameter markers (pure) ---------------------------------------------------

@dataclass(frozen=True)
class Statement:
    text: str  # as written, without surrounding whitespace
    tokens: tuple  # sqlparse's (ttype, value) pairs, whitespace included

    @property
    def summary(self) -> str:
        """The first line of code (leading comments skipped), for the log."""
        code = "".join(value for _, value in _drop_leading_comments(self.tokens))
        line = code.strip().splitlines()[0] if code.strip() else ""
        return line if len(line) <= _LOG_STATEMENT_CHARS else line[:_LOG_STATEMENT_CHARS - 3] + "..."


def split_statements(text: str) -> list[Statement]:
    """The statements of ``text``; comment-only and empty ones are dropped."""
    # FilterStack without grouping: the lexer and splitter only, which is all we need.
    statements = []
    for parsed in FilterStack().run(text):
        tokens = tuple((token.ttype, token.value) for token in parsed.flatten())
        if any(not _is_filler(ttype, value) for ttype, value in tokens):
            statements.append(Statement(str(parsed).strip(), tokens))
    return statements


def _is_filler(ttype, value) -> bool:
    return ttype in T.Whitespace or ttype in T.Comment or (ttype in T.Punctuation and value == ";")


def _drop_leading_comments(tokens):
    for i, (ttype, _) in enumerate(tokens):
        if not (ttype in T.Whitespace or ttype in T.Comment):
            return tokens[i:]
    return ()


def marker_name(ttype, value) -> str | None:
    """``name`` for a ``:name`` marker token. sqlparse already keeps ``::`` casts, ``:=``, strings,
    comments and ``a[lo:hi]`` slices out of Name.Placeholder; ``$1``, ``?`` and ``%s`` are not ours."""
    if ttype in T.Name.Placeholder and value.startswith(":") and value[1:].isidentifier():
        return value[1:]
    return None


def markers(statement: Statement) -> list[str]:
    """The marker names used by the statement, in order of first use."""
    names = (marker_name(ttype, value) for ttype, value in statement.tokens)
    return list(dict.fromkeys(name for name in names if name))


def names_system_tables(statement: Statement) -> bool:
    """Whether the statement names ``system.lakeflow.*`` or ``system.access.*`` (outside strings and
    comments): such a statement is answered by the server's system tables, not by the warehouse."""
    names = [value.strip('"').lower() for ttype, value in statement.tokens
             if ttype in T.Name or ttype in T.String.Symbol or ttype in T.Keyword or ttype in T.Punctuation]
    return any(names[i:i + 3] in (["system", ".", "lakeflow"], ["system", ".", "access"])
               for i in range(len(names) - 2))


def to_driver_sql(statement: Statement, dialect: str) -> str:
    """The statement with ``:name`` rewritten for the driver: DuckDB ``$name``, psycopg ``%(name)s``.

    psycopg parses every ``%`` of a query that gets parameters, inside strings and comments too,
    so those are doubled; a statement without markers is sent as written (and without params).
    """
    has_markers = bool(markers(statement))
    parts = []
    for ttype, value in statement.tokens:
        name = marker_name(ttype, value)
        if name and dialect == "duckdb":
            parts.append(f"${name}")
        elif name:
            parts.append(f"%({name})s")
        elif dialect == "postgres" and has_markers:
            parts.append(value.replace("%", "%%"))
        else:
            parts.append(value)
    return "".join(parts).strip()


def bind(statements: list[Statement], parameters: dict[str, str], dialect: str) -> list[tuple]:
    """(driver SQL, params or None) per statement; ValueError names the first missing parameter."""
    bound = []
    for number, statement in enumerate(statements, 1):
        names = markers(statement)
        missing = [name for name in names if name not in parameters]
        if missing:
            known = ", ".join(sorted(parameters)) if parameters else "none"
            raise ValueError(f"Statement {number} uses :{missing[0]}, but the task has no "
                             f"parameter '{missing[0]}' (parameters: {known})")
        params = {name: parameters[name] for name in names} or None
        bound.append((to_driver_sql(statement, dialect) if params else statement.text, params))
    return bound


# --- preview (pure) ----------------------------------------------------------------------------

def json_safe(value):
    """A JSON value for a database value: Decimal as str (exact), bytes as base64, dates and
    times as ISO 8601, NaN and infinities as "NaN"/"Infinity"/"-Infinity", others as str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _FLOAT_NAMES[str(value)]
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return str(value)  # Decimal, UUID, timedelta, addresses, ranges, ...


_FLOAT_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def unique_columns(names: list[str]) -> list[str]:
    """Column names usable as row keys: a repeated name gets a suffix (a, a_2, a_3)."""
    seen, unique = set(), []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def preview(columns: list[str], rows) -> dict:
    """The first rows that fit in MAX_PREVIEW_ROWS and MAX_PREVIEW_BYTES of JSON.

    ``rows`` may hold one row more than the limit, so that ``truncated`` can tell."""
    shown, size, truncated = [], 2, False  # 2: the list's brackets
    for row in rows:
        if len(shown) == MAX_PREVIEW_ROWS:
            truncated = True
            break
        record = {column: json_safe(value) for column, value in zip(columns, row)}
        size += len(json.dumps(record, ensure_ascii=False).encode("utf-8")) + 2  # ", "
        if size > MAX_PREVIEW_BYTES:
            truncated = True
            break
        shown.append(record)
    return {"columns": columns, "rows": shown, "row_count_shown": len(shown), "truncated": truncated}


def text_table(block: dict, max_rows: int = LOG_PREVIEW_ROWS) -> str:
    """The preview as a small aligned table for the log."""
    columns = block["columns"]
    cells = [[_log_cell(row.get(column)) for column in columns] for row in block["rows"][:max_rows]]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    lines = [_table_line(columns, widths), "-+-".join("-" * w for w in widths)]
    lines += [_table_line(line, widths) for line in cells]
    more = " (truncated)" if block["truncated"] else ""
    lines.append(f"({min(max_rows, len(cells))} of {block['row_count_shown']} preview rows{more})")
    return "\n".join(lines)


def _table_line(cells: list[str], widths: list[int]) -> str:
    return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def _log_cell(value) -> str:
    text = "NULL" if value is None else value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", " ")
    return text if len(text) <= _LOG_CELL_CHARS else text[:_LOG_CELL_CHARS - 3] + "..."


# --- run (task process) ------------------------------------------------------------------------

class _ConnectError(Exception):
    pass


def run(spec: dict) -> dict:
    """Run the statements in order; stop at the first error. Returns the runner's result dict."""
    warehouse_id, url = spec["warehouse_id"], spec["warehouse_url"]
    dialect = "duckdb" if url.startswith(_DUCKDB_SCHEME) else "postgres"
    try:
        text = _read_sql(spec)
    except OSError as exc:
        return _task_error("RESOURCE_NOT_FOUND", f"Cannot read SQL file {spec['sql_file']}: "
                                                 f"{exc.strerror or exc}")
    statements = split_statements(text)
    if not statements:
        return _task_error("INVALID_RUN_CONFIGURATION", "The SQL has no statements to run")
    try:
        bound = bind(statements, spec.get("parameters") or {}, dialect)
    except ValueError as exc:
        return _task_error("INVALID_RUN_CONFIGURATION", str(exc))
    parameters = spec.get("parameters") or {}
    system = [(to_driver_sql(statement, "duckdb"), {name: parameters[name] for name in markers(statement)})
              if names_system_tables(statement) else None for statement in statements]
    try:
        return _execute(statements, bound, text, warehouse_id, url, dialect, system, spec.get("system_tables"))
    except _ConnectError as exc:
        return _failure(str(exc))


def _read_sql(spec: dict) -> str:
    if "sql_text" in spec:
        return spec["sql_text"]
    with open(spec["sql_file"], encoding="utf-8") as f:
        return f.read()


def _execute(statements, bound, text, warehouse_id, url, dialect, system, system_tables) -> dict:
    """``system``: per statement, None, or (DuckDB SQL, parameters) of a query of the system tables,
    which the server answers (``system_tables``: its URL and this attempt's credential)."""
    session = _duckdb_session(url) if dialect == "duckdb" else _postgres_session(warehouse_id, url)
    errors = _driver_errors(dialect)
    ran = Ran(warehouse_id, dialect)  # what the worker reads the tables read and written from
    last = {"columns": [], "rows": [], "row_count_shown": 0, "truncated": False}
    with session as connection:
        for number, (statement, (sql, params)) in enumerate(zip(statements, bound), 1):
            if system[number - 1] is not None:
                print(f"[statement {number}/{len(statements)}] {statement.summary} (system tables)", flush=True)
                try:
                    last = query_system_tables(system_tables, *system[number - 1])
                except SystemTablesError as exc:
                    message = f"Statement {number} of {len(statements)} failed: {exc}"
                    return {**_failure(message, statement.text), **ran.report(connection)}
                continue
            print(f"[statement {number}/{len(statements)}] {statement.summary}", flush=True)
            try:
                found, rows_written = _run_statement(connection, sql, params, dialect)
            except errors as exc:
                message = f"Statement {number} of {len(statements)} failed: {str(exc).strip()}"
                # The statements before it did run: their writes may fire table-update triggers.
                return {**_failure(message, statement.text), **ran.report(connection)}
            ran.statements.append(statement.text)
            ran.row_counts.append(rows_written)
            last = found or last
        report = ran.report(connection)
    if last["columns"]:
        print(text_table(last), flush=True)
    return {"exit_code": 0, "sql_output": {
        "query_text": text,
        "warehouse_id": warehouse_id,
        "sql_statements": [{"lookup_key": f"statement-{n}"} for n in range(1, len(statements) + 1)],
        "output_link": "",
        **last,
    }, **report}


@dataclass
class Ran:
    """The statements that ran, in order, and the rows each wrote (None: the driver did not say)."""

    warehouse_id: str
    dialect: str
    statements: list = field(default_factory=list)
    row_counts: list = field(default_factory=list)

    def report(self, connection) -> dict:
        return {"sql_ran": {"warehouse_id": self.warehouse_id, "dialect": self.dialect,
                            "statements": self.statements, "row_counts": self.row_counts,
                            "schema": warehouse_columns(connection, self.dialect, self.statements) if self.statements else {}}}


def warehouse_columns(connection, dialect, statements) -> dict:
    """{"schema.table": {"column": "TYPE"}} of the warehouse's tables the statements name (column
    lineage needs them to expand ``SELECT *``; a table whose name is not in the text cannot be
    one of them); {} if the warehouse will not say (an aborted transaction)."""
    text = "\n".join(statements).lower()
    mark = "?" if dialect == "duckdb" else "%s"
    try:
        rows = connection.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema NOT IN ('information_schema', 'pg_catalog') "
            f"AND strpos({mark}, lower(table_name)) > 0 "
            f"ORDER BY table_schema, table_name, ordinal_position LIMIT {MAX_SCHEMA_COLUMNS}", [text]).fetchall()
    except Exception:  # a nicety: table lineage does not need it
        return {}
    columns = {}
    for schema, table, column, data_type in rows:
        columns.setdefault(f"{schema}.{table}", {})[column] = str(data_type)
    return columns


def _run_statement(connection, sql: str, params: dict | None, dialect: str):
    """Run one statement: its preview if it returned rows, and the rows it wrote if the driver says."""
    cursor = connection.execute(sql, params)
    if cursor.description is None:
        return None, (cursor.rowcount if cursor.rowcount >= 0 else None)
    columns = [column[0] for column in cursor.description]
    if dialect == "duckdb" and columns in _DUCKDB_STATUS_COLUMNS and not _is_duckdb_query(connection, sql):
        row = cursor.fetchone() if columns == ["Count"] else None
        return None, (int(row[0]) if row and isinstance(row[0], int) else None)
    return preview(unique_columns(columns), cursor.fetchmany(MAX_PREVIEW_ROWS + 1)), None


def _is_duckdb_query(connection, sql: str) -> bool:
    import duckdb

    return all(s.type == duckdb.StatementType.SELECT for s in connection.extract_statements(sql))


def _driver_errors(dialect: str) -> type:
    if dialect == "duckdb":
        import duckdb

        return duckdb.Error
    import psycopg

    return psycopg.Error


class SystemTablesError(Exception):
    """The server refused or could not answer a query of the system tables."""


SYSTEM_TABLES_TIMEOUT_SECONDS = 900  # the server stops a query at its own limit well before


def query_system_tables(access, sql: str, params: dict) -> dict:
    """The preview of a query of the system tables, answered by the server (system_tables/api.py)
    as the run's run-as identity: this process never sees our database."""
    if not access:
        raise SystemTablesError("system tables are read as the run's run-as identity, and this run has none")
    import json
    import urllib.error
    import urllib.request

    body = json.dumps({"statement": sql, "parameters": params, "max_rows": MAX_PREVIEW_ROWS + 1}).encode()
    request = urllib.request.Request(access["url"], data=body, method="POST", headers={
        "Authorization": f"Bearer {access['token']}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=SYSTEM_TABLES_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message") or f"HTTP {exc.code}"
        except ValueError:
            message = f"HTTP {exc.code}"
        if message.startswith("Only queries"):
            message += (" (a statement naming system tables is answered by the server on its own: it cannot "
                        "write to the warehouse or join the warehouse's tables)")
        raise SystemTablesError(message) from None
    except OSError as exc:  # URLError, timeouts, refused connections
        raise SystemTablesError(f"the server at {access['url']} cannot be reached: {exc}") from None
    columns = unique_columns([column["name"] for column in answer["columns"]])
    return preview(columns, answer["rows"])


class _duckdb_session:
    """A DuckDB connection, holding ``<file>.lock`` so that tasks on one file take turns
    (DuckDB lets a single process at a time open a file for writing)."""

    def __init__(self, url: str):
        self.path = duckdb_path(url)
        self.lock_fd = None
        self.connection = None

    def __enter__(self):
        import duckdb

        if self.path != _DUCKDB_MEMORY:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.lock_fd = _lock_exclusively(f"{self.path}.lock")
        try:
            self.connection = duckdb.connect(self.path)
        except duckdb.Error as exc:
            self._release()
            raise _ConnectError(f"Cannot open DuckDB database {self.path}: {exc}") from exc
        return self.connection

    def __exit__(self, *exc_info):
        try:
            self.connection.close()
        finally:
            self._release()

    def _release(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # closing the descriptor releases the flock
            self.lock_fd = None


def duckdb_path(url: str) -> str:
    """``duckdb:///abs/path``, ``duckdb:////abs/path`` -> /abs/path; ``duckdb:///:memory:``."""
    path = url[len(_DUCKDB_SCHEME):].lstrip("/")
    return _DUCKDB_MEMORY if path == _DUCKDB_MEMORY else "/" + path


def _lock_exclusively(path: str) -> int:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("waiting for the warehouse lock", flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


class _postgres_session:
    """An autocommit connection: each statement commits on its own, as in Databricks SQL."""

    def __init__(self, warehouse_id: str, url: str):
        self.warehouse_id, self.url = warehouse_id, url
        self.connection = None

    def __enter__(self):
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            options = {} if "connect_timeout" in conninfo_to_dict(self.url) else {
                "connect_timeout": _CONNECT_TIMEOUT_SECONDS}
            self.connection = psycopg.connect(self.url, autocommit=True, **options)
        except psycopg.Error as exc:
            message = _without_password(str(exc).strip(), self.url)
            raise _ConnectError(f"Cannot connect to SQL warehouse '{self.warehouse_id}': "
                                f"{message}") from exc
        return self.connection

    def __exit__(self, *exc_info):
        self.connection.close()


def _without_password(message: str, url: str) -> str:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in filter(None, {password, password and unquote(password)}):
        message = message.replace(secret, "***")
    return message


def _failure(error: str, trace: str | None = None) -> dict:
    sys.stderr.write(f"Error: {error}\n")
    result = {"error": error, "exit_code": 1}
    if trace is not None:
        result["error_trace"] = trace
    return result


def _task_error(code: str, message: str) -> dict:
    sys.stderr.write(f"Error: {message}\n")
    return {"error": message, "error_code": code, "exit_code": 1}
