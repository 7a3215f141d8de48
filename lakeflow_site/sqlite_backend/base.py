"""Django's SQLite backend, with write transactions queued on a file lock instead of SQLite's
busy handler.

SQLite lets one writer in at a time, and a connection that finds the write lock taken sleeps
1, 2, 5, 10, 15, 20, 25... ms before it looks again: nobody wakes it when the lock frees. With
several worker processes finishing tasks at once, those sleeps rather than the writes set the
pace (a 500-task fan-out ran at 15 tasks/s, its workers waiting at BEGIN most of the time).
Here every transaction (``atomic``; BEGIN IMMEDIATE in our settings) first takes an exclusive
``flock`` on a file beside the database, and the kernel wakes the next waiter the moment the
holder commits or rolls back. Single statements outside ``atomic`` still meet the busy handler.
"""

import fcntl
import os

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _lock_fd = None
    _lock_held = False

    def _start_transaction_under_autocommit(self):
        self._take_write_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_write_lock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _take_write_lock(self):
        if self.is_in_memory_db():
            return
        if self._lock_fd is None:
            # Per connection, not per process: flock locks belong to an open file, so two
            # threads' connections in one process queue on each other too.
            path = f"{self.settings_dict['NAME']}.write-lock"
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._lock_held = True

    def _release_write_lock(self):
        if self._lock_held:
            self._lock_held = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
