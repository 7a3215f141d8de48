"""For the race scripts run against Postgres (reaction_race.py, secrets_limit_race.py,
claim_race.py): wait, on a connection of its own, until some session of this database waits on a
lock. That is how a script knows the other side is blocked where the race is decided, without
sleeping and hoping. And the one-task run they race over."""

import time

WAIT_FOR_THE_OTHER = 30  # seconds; only reached if the other never blocks (what the tests then catch)


def wait_for_a_session_blocked_on_a_lock(timeout=WAIT_FOR_THE_OTHER):
    from django.db import connections

    other = connections.create_connection("default")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with other.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")
                if cursor.fetchone()[0]:
                    return True
            time.sleep(0.05)
        return False
    finally:
        other.close()


def one_task_run(username):
    """A new run of a new job whose one task "t" is a shell command, created by a new user."""
    from django.contrib.auth import get_user_model

    from jobs.models import Job
    from jobs.spec.settings import validate_job_settings
    from runs.admission import create_run

    user = get_user_model().objects.create_user(username)
    job = Job(creator=user)
    job.save_version(validate_job_settings(
        {"name": username, "tasks": [{"task_key": "t", "shell_command_task": {"command": "true"}}]}), user)
    run, _ = create_run(job)
    return run
