"""Run a trigger's sql_condition query on its warehouse: the task-side half of runs/sql_conditions.py.

The server starts this in a process of its own, as the task user (``python -c BOOTSTRAP
project_root``): the query can read no more than a sql_task of the job could (DuckDB reads local
files, the server's own among them if it ran in the server), a slow one is bounded by killing a
process, and the server's threads never wait for a warehouse lock.

It reads {"warehouse_id", "url", "query", "timeout_seconds"} as JSON on stdin and writes one
JSON object on stdout: {"result": preview} (runs/executors/sql.py's columns, rows,
row_count_shown, truncated) or {"error": message} (a warehouse URL's password replaced by ***).

- The query is one statement that reads, whatever the save-time check let through: DuckDB's own
  parser must see one SELECT; Postgres gets it through the extended protocol (one statement),
  inside a READ ONLY transaction that has already run a query (so it cannot be made read-write).
  Both transactions are rolled back.
- DuckDB: the session takes the warehouse's lock like a sql_task (runs/executors/sql.py), so a
  condition waits for a running sql_task's turn to end rather than failing on DuckDB's own lock;
  the wait counts against the time limit.
- The time limit covers waiting, connecting and the query: at the deadline the process answers
  "timed out" and exits (the server kills it too if it does not). Postgres also gets the limit as
  its statement_timeout, so the server stops the query when the client goes.
"""

import contextlib
import fcntl
import json
import os
import sys
import threading

from .sql import (
    _DUCKDB_SCHEME,
    MAX_PREVIEW_ROWS,
    _ConnectError,
    _driver_errors,
    _duckdb_session,
    _postgres_session,
    _without_password,
    duckdb_path,
    preview,
    unique_columns,
)

BOOTSTRAP = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from runs.executors.condition_query import main\n"
    "sys.exit(main())\n"
)


class QueryRefused(Exception):
    pass


class _Answer:
    """The one answer this process gives: the query's, or the deadline's if that comes first."""

    def __init__(self, out):
        self.out, self.lock, self.given = out, threading.Lock(), False
        self.doing = ""  # for the deadline's message: what the process was doing
        self.done = threading.Event()

    def give(self, answer: dict) -> None:
        with self.lock:
            if not self.given:
                self.given = True
                self.out.write(json.dumps(answer, ensure_ascii=False))
                self.out.flush()
        self.done.set()

    def expire_after(self, seconds: float) -> None:
        if not self.done.wait(seconds):
            self.give({"error": f"timed out after {seconds:g} s {self.doing} "
                                "(LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS)"})
            os._exit(0)  # the query may be running in C: leave it behind


def main() -> int:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the sessions print ("waiting for the warehouse lock") is not the answer
    request = json.load(sys.stdin)
    url = request["url"]
    dialect = "duckdb" if url.startswith(_DUCKDB_SCHEME) else "postgres"
    _driver_errors(dialect)  # the driver imported before the clock starts: the limit is the warehouse's
    answer = _Answer(out)
    # Said before the clock starts, so that a deadline while waiting always says why.
    answer.doing = "connecting to the warehouse" if dialect == "postgres" else (
        "waiting for the warehouse, which a task is using" if _locked(duckdb_path(url)) else "opening the warehouse")
    threading.Thread(target=answer.expire_after, args=(float(request["timeout_seconds"]),), daemon=True).start()
    answer.give(run_query(request, dialect, answer))
    return 0


def _locked(path: str) -> bool:
    """Whether a task holds the DuckDB file's lock now (the session then waits for it)."""
    try:
        fd = os.open(f"{path}.lock", os.O_RDONLY)
    except OSError:  # no task has used the file yet
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock before the session takes its own
    return False


def run_query(request: dict, dialect: str, answer: _Answer) -> dict:
    warehouse_id, url, query = request["warehouse_id"], request["url"], request["query"]
    session = _duckdb_session(url) if dialect == "duckdb" else _postgres_session(warehouse_id, url)
    try:
        with session as connection:
            answer.doing = "running the query"
            if dialect == "duckdb":
                return {"result": _duckdb_rows(connection, query)}
            return {"result": _postgres_rows(connection, query, float(request["timeout_seconds"]))}
    except (_ConnectError, QueryRefused) as exc:
        return {"error": str(exc)}
    except _driver_errors(dialect) as exc:
        return {"error": _without_password(str(exc).strip(), url)}


def _duckdb_rows(connection, query: str) -> dict:
    import duckdb

    statements = connection.extract_statements(query)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused("the query must be one statement that reads (SELECT)")
    connection.execute("BEGIN TRANSACTION")
    try:
        return _rows(connection.execute(query))
    finally:
        _roll_back(connection)


def _postgres_rows(connection, query: str, timeout_seconds: float) -> dict:
    connection.execute("BEGIN READ ONLY")
    try:
        connection.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}")
        connection.execute("SELECT 1")  # a query ran: the transaction can no longer become read-write
        return _rows(connection.execute(query, prepare=True))  # prepared: one statement only
    finally:
        _roll_back(connection)


def _roll_back(connection) -> None:
    with contextlib.suppress(Exception):  # a lost connection: the query's own error says more
        connection.execute("ROLLBACK")


def _rows(cursor) -> dict:
    if cursor.description is None:
        raise QueryRefused("the query returned no result set")
    columns = unique_columns([column[0] for column in cursor.description])
    return preview(columns, cursor.fetchmany(MAX_PREVIEW_ROWS + 1))
