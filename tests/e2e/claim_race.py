"""A worker claiming an attempt from its broker message while a finishing worker holds the run
lock and claims that same attempt for its handoff, on Postgres (used by
test_claim_race_on_postgres.py). Prints the two claims' results as JSON.

The overlap is forced, not hoped for: the finisher takes the run lock, lets the claimer start, and
claims only once it sees a session blocked on a lock. Locks taken in the wrong order (the
attempt's row, then the run's at the claim's commit: a deferred foreign key) deadlock here."""

import json
import os
import sys
import threading
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakeflow_site.settings")
django.setup()

from django.db import connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from runs.loading import lock_run  # noqa: E402
from runs.models import TaskRun  # noqa: E402
from runs.transitions import claim  # noqa: E402
from runs.worker import claim_loaded, claimable  # noqa: E402
from tests.e2e.postgres_waits import one_task_run, wait_for_a_session_blocked_on_a_lock  # noqa: E402


def main():
    run = one_task_run("claimer")
    attempt_id = TaskRun.objects.get(run=run, task_key="t").id
    results, locked = {}, threading.Event()

    def finisher():
        try:
            with transaction.atomic():
                locked_run = lock_run(run.id)
                locked.set()
                results["claimer blocked"] = wait_for_a_session_blocked_on_a_lock()
                results["finisher"] = claim(locked_run, TaskRun.objects.get(id=attempt_id), timezone.now(), "finisher")
        except Exception as exc:
            results["finisher"] = f"{type(exc).__name__}: {exc}"
            locked.set()
        finally:
            connections.close_all()

    def claimer():
        try:
            locked.wait()
            results["claimer"] = claim_loaded(claimable(attempt_id))
        except Exception as exc:
            results["claimer"] = f"{type(exc).__name__}: {exc}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finisher), threading.Thread(target=claimer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results["attempt"] = TaskRun.objects.filter(id=attempt_id).values_list("life_cycle_state", "worker_host").get()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
