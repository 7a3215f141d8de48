"""The SQLite backend queues transactions on a file lock (lakeflow_site/sqlite_backend)."""

import fcntl
import os

import pytest
from django.db.utils import ConnectionHandler


@pytest.fixture
def sqlite_file(tmp_path, django_db_blocker):
    handler = ConnectionHandler({"default": {
        "ENGINE": "lakeflow_site.sqlite_backend", "NAME": str(tmp_path / "db.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE"}}})
    connection = handler["default"]
    with django_db_blocker.unblock():
        yield connection, tmp_path / "db.sqlite3.write-lock"
        connection.close()


def begin(connection):
    """What transaction.atomic does on entry, on this (unregistered) connection."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def lock_is_free(path):
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_transaction_holds_the_file_lock_until_it_commits(sqlite_file):
    connection, lock = sqlite_file
    begin(connection)
    connection.cursor().execute("CREATE TABLE t (x INTEGER)")
    assert not lock_is_free(lock)
    connection.commit()
    connection.set_autocommit(True)
    assert lock_is_free(lock)
    assert connection.introspection.table_names() == ["t"]


def test_a_rolled_back_transaction_releases_the_file_lock(sqlite_file):
    connection, lock = sqlite_file

    begin(connection)
    connection.cursor().execute("CREATE TABLE t (x INTEGER)")
    connection.rollback()
    connection.set_autocommit(True)
    assert lock_is_free(lock)
    assert connection.introspection.table_names() == []  # rolled back, not committed
