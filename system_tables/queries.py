"""Running a query of the system tables for one identity: the shell around
runs/executors/system_views.py (the views, the locked connection) and system_statements.py
(what may run).

- ``scope_for(user)``: the jobs the user may view (jobs/permissions.py), None for admins;
- ``open_for(scope)``: a cursor on a DuckDB connection with our database attached read-only and
  the views made for that scope. Connections are kept (a few, for a few minutes) per scope: making
  one costs ~0.1 s (loading the scanner, binding the views); the data is read live at every query,
  so they stay current to the second. A new grant or job is a new scope, so a new connection;
- ``run_on(cursor, sql)``: check, rewrite and run it with the time limit, keeping at most
  ``max_rows`` rows; ``stream_on`` yields rows for a download.
"""

import contextlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

from jobs.models import Job
from jobs.permissions import caller_of, viewable_jobs
from runs.executors.system_statements import Refused, checked, confirm
from runs.executors.system_views import Scope, SystemTablesUnavailable, Target, connect

KEPT_CONNECTIONS = 8
KEPT_SECONDS = 300
# libpq's connection keywords we pass on from Django's settings (never Django's own objects).
_LIBPQ_KEYS = ("dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey",
               "sslpassword", "options", "passfile", "service", "connect_timeout", "application_name",
               "target_session_attrs")


class QueryFailed(Exception):
    """The query was refused, failed or ran out of time; the message is for the user."""


@dataclass
class Answer:
    columns: list
    types: list
    rows: list  # at most max_rows, as DuckDB returned them
    total: int  # rows the query answered, counted up to max_rows
    truncated: bool  # it answered more than max_rows
    duration_ms: int = 0
    sql: str = field(default="", repr=False)  # what ran


def scope_for(user):
    """What ``user`` may see (a user acting for a task is never an admin: jobs/permissions.py)."""
    if caller_of(user).is_admin:
        return Scope(None, user.id)
    ids = viewable_jobs(Job.objects.all(), user, whole=True).values_list("id", flat=True)
    return Scope(frozenset(ids), user.id)


def target():
    """Our database, as DuckDB attaches it."""
    connection = connections["default"]
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if connection.is_in_memory_db():
            raise SystemTablesUnavailable("the system tables need a database file; this one is in memory")
        return Target("sqlite", name)
    if connection.vendor == "postgresql":
        from psycopg.conninfo import make_conninfo

        params = connection.get_connection_params()
        return Target("postgres", make_conninfo(**{key: str(params[key]) for key in _LIBPQ_KEYS
                                                   if key != "password" and params.get(key) not in (None, "")}),
                      password=str(params.get("password") or ""))
    raise SystemTablesUnavailable(f"the system tables cannot read a {connection.vendor} database")


class _Kept:
    """Open connections by (target, scope, currency), the least recently used retired first. A
    retired connection closes once its last cursor is done: closing a DuckDB connection closes its
    cursors, and a download may still be reading from one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connections = OrderedDict()  # key -> _Entry, the most recently used last

    def take(self, key, make):
        """(entry, a new cursor of its connection); give the entry back with ``release``."""
        with self.lock:
            entry = self.connections.pop(key, None)
        if entry is None:
            entry = _Entry(make())
        with self.lock:
            entry.users += 1
            entry.used_at = time.monotonic()
            self.connections[key] = entry
            self._retire(lambda k, e: len(self.connections) > KEPT_CONNECTIONS and e is not entry)
            self._retire(lambda k, e: entry.used_at - e.used_at > KEPT_SECONDS)
            return entry, entry.connection.cursor()

    def release(self, entry):
        with self.lock:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                entry.connection.close()

    def _retire(self, should):
        for key, entry in list(self.connections.items()):
            if should(key, entry):
                del self.connections[key]
                entry.retired = True
                if entry.users == 0:
                    entry.connection.close()

    def clear(self):
        with self.lock:
            self._retire(lambda key, entry: True)


@dataclass
class _Entry:
    connection: object
    users: int = 0
    used_at: float = 0.0
    retired: bool = False


kept = _Kept()


@contextlib.contextmanager
def open_for(scope):
    """A cursor over the views for ``scope``; QueryFailed if they cannot be opened."""
    where = target()
    currency = settings.LAKEFLOW_COST_CURRENCY
    try:
        entry, cursor = kept.take((where, scope, currency), lambda: connect(where, scope, currency=currency))
    except SystemTablesUnavailable as exc:
        raise QueryFailed(f"The system tables are not available: {exc}") from None
    except Exception as exc:  # duckdb.Error: the database cannot be attached
        raise QueryFailed(f"The system tables cannot be opened: {_without(where, exc)}") from None
    try:
        yield cursor
    finally:
        cursor.close()
        kept.release(entry)


def _without(where, exc):
    """The error's message without the Postgres password (never in the connection string it
    names, but the server's own message might echo it)."""
    message = str(exc).strip()
    return message.replace(where.password, "***") if where.password else message


def _statement(cursor, sql, params):
    """Check, rewrite and start ``sql`` on the cursor; the DuckDB SQL that runs."""
    import duckdb

    try:
        runs = checked(sql)
        confirm(cursor, runs)
    except Refused as exc:
        raise QueryFailed(str(exc)) from None
    try:
        cursor.execute(runs, params or None)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        raise QueryFailed(_message(exc)) from None
    return runs


def _message(exc):
    """DuckDB's message, without its internal LINE/caret context lines repeated twice."""
    return str(exc).strip()


def _timed_out(seconds):
    return QueryFailed(f"The query ran longer than {seconds:g} seconds and was stopped "
                       f"(LAKEFLOW_SYSTEM_TABLES_TIMEOUT_SECONDS)")


def run_on(cursor, sql, *, params=None, max_rows=None, keep_rows=None, timeout=None):
    """Run ``sql`` on the cursor: an Answer with the first ``keep_rows`` rows (all that it counted,
    by default) and the count of all of them, up to ``max_rows``; QueryFailed otherwise."""
    import duckdb

    max_rows = settings.LAKEFLOW_SYSTEM_TABLES_MAX_ROWS if max_rows is None else max_rows
    keep_rows = max_rows if keep_rows is None else min(keep_rows, max_rows)
    timeout = settings.LAKEFLOW_SYSTEM_TABLES_TIMEOUT_SECONDS if timeout is None else timeout
    started = time.perf_counter()
    timer = threading.Timer(timeout, cursor.interrupt)
    timer.daemon = True
    timer.start()
    try:
        runs = _statement(cursor, sql, params)
        columns = [column[0] for column in cursor.description]
        types = [str(column[1]) for column in cursor.description]
        rows = cursor.fetchmany(keep_rows) if keep_rows else []
        total = len(rows)
        while total <= max_rows:
            more = len(cursor.fetchmany(min(10_000, max_rows + 1 - total)))
            if not more:
                break
            total += more
    except duckdb.InterruptException:
        raise _timed_out(timeout) from None
    except duckdb.Error as exc:  # while fetching: a cast or an out-of-memory error
        raise QueryFailed(_message(exc)) from None
    finally:
        timer.cancel()
    return Answer(columns, types, rows[:max_rows], min(total, max_rows), total > max_rows,
                  round((time.perf_counter() - started) * 1000), runs)


def stream_on(cursor, sql, *, params=None, max_rows=None, timeout=None):
    """(columns, rows): the query started now, its rows (at most ``max_rows``) fetched as they
    are read, for a download. The time limit covers the query and the fetching."""
    import duckdb

    max_rows = settings.LAKEFLOW_SYSTEM_TABLES_MAX_ROWS if max_rows is None else max_rows
    timeout = settings.LAKEFLOW_SYSTEM_TABLES_TIMEOUT_SECONDS if timeout is None else timeout
    timer = threading.Timer(timeout, cursor.interrupt)
    timer.daemon = True
    timer.start()
    try:
        _statement(cursor, sql, params)
    except duckdb.InterruptException:
        timer.cancel()
        raise _timed_out(timeout) from None
    except BaseException:
        timer.cancel()
        raise
    columns = [column[0] for column in cursor.description]

    def rows():
        sent = 0
        try:
            while sent < max_rows:
                chunk = cursor.fetchmany(min(1000, max_rows - sent))
                if not chunk:
                    return
                sent += len(chunk)
                yield from chunk
        finally:
            timer.cancel()

    return columns, rows()
