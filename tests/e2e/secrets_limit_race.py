"""Two requests at once add the last scope the workspace may hold, then the last secret a scope may
hold, on Postgres (used by test_secrets_limits_on_postgres.py). The overlap is forced, not hoped
for: the first holds its transaction open just before it inserts, until it sees the second blocked
on a lock; a count that the lock does not cover lets the second in (and the first then waits in vain).

    python tests/e2e/secrets_limit_race.py   -> prints one line per race: "<first> <second> <rows>"
"""

import os
import sys
import threading
from pathlib import Path
from unittest import mock

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakeflow_site.settings")
django.setup()

from django.db import connection  # noqa: E402

from vault import store  # noqa: E402
from vault.models import Secret, SecretScope  # noqa: E402
from tests.e2e.postgres_waits import WAIT_FOR_THE_OTHER, wait_for_a_session_blocked_on_a_lock  # noqa: E402
from vault.rules import LimitExceeded  # noqa: E402

def race(manager, first_call, second_call):
    """Run `first_call` and `second_call` in two threads, the second started once the first is
    about to insert with `manager.create`; returns both outcomes ("ok" or "limit")."""
    about_to_insert, outcomes = threading.Event(), {}
    real_create = manager.create

    def create(*args, **kwargs):
        if threading.current_thread().name == "first":
            about_to_insert.set()
            wait_for_a_session_blocked_on_a_lock()
        return real_create(*args, **kwargs)

    def call(name, function):
        try:
            function()
            outcomes[name] = "ok"
        except LimitExceeded:
            outcomes[name] = "limit"
        finally:
            connection.close()

    with mock.patch.object(manager, "create", create):
        first = threading.Thread(target=call, args=("first", first_call), name="first")
        first.start()
        about_to_insert.wait(timeout=WAIT_FOR_THE_OTHER)
        second = threading.Thread(target=call, args=("second", second_call), name="second")
        second.start()
        first.join()
        second.join()
    return outcomes["first"], outcomes["second"]


def main():
    with mock.patch.object(store, "MAX_SCOPES", 1):
        first, second = race(SecretScope.objects, lambda: store.create_scope("one", None),
                             lambda: store.create_scope("two", None))
    print("scopes", first, second, SecretScope.objects.count())
    with mock.patch.object(store, "MAX_SECRETS_PER_SCOPE", 1):
        first, second = race(Secret.objects, lambda: store.put_secret("one", "a", b"1", None),
                             lambda: store.put_secret("one", "b", b"2", None))
    print("secrets", first, second, Secret.objects.count())


if __name__ == "__main__":
    main()
