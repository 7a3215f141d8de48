"""Settings for the unit tests: a throwaway LAKEFLOW_HOME and django-q2 in sync mode (the
broker's fast twin: an enqueued attempt runs inline once its transaction commits)."""

import os
import tempfile

os.environ["LAKEFLOW_HOME"] = tempfile.mkdtemp(prefix="lakeflow-test-")
os.environ.setdefault("LAKEFLOW_Q_SYNC", "1")
os.environ.setdefault("LAKEFLOW_SCAN_IN_BACKGROUND", "0")  # file-arrival scans in the clock's step
# Tasks run as the test process's own user (tests of another user make their own), and may use
# files in the temporary directories the tests write their scripts to.
os.environ.setdefault("LAKEFLOW_TASK_USER", "")
os.environ.setdefault("LAKEFLOW_TASK_FILE_ROOTS", tempfile.gettempdir())
os.environ.setdefault("LAKEFLOW_GIT_LOCAL_ROOTS", tempfile.gettempdir())  # the tests' git repositories
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

from lakeflow_site.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
