"""For the race scripts run against Postgres (reaction_race.py, secrets_limit_race.py): wait, on a
connection of its own, until some session of this database waits on a lock. That is how a script
knows the other side is blocked where the race is decided, without sleeping and hoping."""

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
