"""The SQLite backend queues transactions on a file lock (lakeflow_site/sqlite_backend)."""

import fcntl
import os
import threading

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler


@pytest.fixture
def connect(tmp_path, django_db_blocker):
    """Connections of their own to one SQLite file (not the test database)."""
    opened = []

    def connect(timeout=5):
        handler = ConnectionHandler({"default": {
            "ENGINE": "lakeflow_site.sqlite_backend", "NAME": str(tmp_path / "db.sqlite3"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": timeout}}})
        opened.append(handler["default"])
        return opened[-1]

    with django_db_blocker.unblock():
        yield connect
        for connection in opened:
            connection.close()


def begin(connection):
    """What transaction.atomic does on entry, on an unregistered connection."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def end(connection, commit=True):
    connection.commit() if commit else connection.rollback()
    connection.set_autocommit(True)


def lock_is_free(tmp_path):
    fd = os.open(tmp_path / "db.sqlite3.write-lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def test_a_transaction_holds_the_lock_until_it_commits_or_rolls_back(connect, tmp_path):
    connection = connect()
    begin(connection)
    connection.cursor().execute("CREATE TABLE t (x INTEGER)")
    assert not lock_is_free(tmp_path)
    end(connection)
    assert lock_is_free(tmp_path)
    assert connection.introspection.table_names() == ["t"]

    begin(connection)
    connection.cursor().execute("CREATE TABLE u (x INTEGER)")
    end(connection, commit=False)
    assert lock_is_free(tmp_path)
    assert connection.introspection.table_names() == ["t"]


def test_a_second_transaction_waits_for_the_first_and_then_goes_on(connect, monkeypatch):
    first, second = connect(), connect()
    second.inc_thread_sharing()  # used by the thread below
    begin(first)
    first.cursor().execute("CREATE TABLE t (x INTEGER)")
    found_taken, order = threading.Event(), []
    flock = fcntl.flock

    def watched_flock(fd, operation):  # tells when the second transaction found the lock taken
        try:
            return flock(fd, operation)
        except BlockingIOError:
            found_taken.set()
            raise

    monkeypatch.setattr("lakeflow_site.sqlite_backend.base.fcntl.flock", watched_flock)

    def other():
        begin(second)
        order.append("second entered")
        second.cursor().execute("INSERT INTO t VALUES (2)")
        end(second)

    thread = threading.Thread(target=other)
    thread.start()
    assert found_taken.wait(timeout=60)  # it is waiting: the first holds the lock
    order.append("first committed")
    end(first)
    thread.join(60)
    assert order == ["first committed", "second entered"]
    assert first.cursor().execute("SELECT x FROM t").fetchall() == [(2,)]


def test_a_lock_held_too_long_is_database_is_locked_and_nothing_leaks(connect):
    holder, waiter = connect(), connect(timeout=0.2)
    holder.ensure_connection()
    waiter.ensure_connection()
    idle = open_descriptors()
    begin(holder)
    with pytest.raises(OperationalError, match="database is locked"):
        begin(waiter)
    end(holder)
    for _ in range(20):
        begin(waiter)
        end(waiter)
    assert open_descriptors() == idle  # the lock file is open only while a transaction is
