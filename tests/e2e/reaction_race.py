"""Two processes run the same reaction of the same event at once, on Postgres (used by
test_reactions_race_on_postgres.py).

    python tests/e2e/reaction_race.py setup            -> prints the id of a pending test.raced event
    python tests/e2e/reaction_race.py first EVENT GATE -> reacts; inside the reaction it creates GATE,
                                                          then waits for a session blocked on a lock
    python tests/e2e/reaction_race.py second EVENT GATE -> waits for GATE, then runs the reactions

The reaction's effect is a test.effect event, written in the reaction's transaction: exactly once
means exactly one such row, however the two interleave.
"""

import os
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakeflow_site.settings")
django.setup()

from django.utils import timezone  # noqa: E402

from runs.models import RunEvent  # noqa: E402
from tests.e2e.postgres_waits import one_task_run, wait_for_a_session_blocked_on_a_lock  # noqa: E402
from runs.reactions import reacts_to, run_reactions  # noqa: E402

WAIT_FOR_THE_OTHER = 120  # seconds; only reached if the other process never blocks (a broken claim)


def setup():
    run = one_task_run("racer")
    event = RunEvent.objects.create(run=run, type="test.raced", at=timezone.now(), data={}, reactions_pending=True)
    print(event.id)


def main(role, event_id=None, gate=None):
    if role == "setup":
        return setup()

    @reacts_to("test.raced", name="tests.reaction_race")
    def write_the_effect(event):
        if role == "first":
            Path(gate).touch()
            # The reaction's transaction holds the claim on its mark: the second process, now
            # starting, must wait for it. Observed from here with a fresh connection.
            wait_for_a_session_blocked_on_a_lock(WAIT_FOR_THE_OTHER)
        RunEvent.objects.create(run_id=event.run_id, type="test.effect", at=timezone.now(), data={"by": role})

    if role == "second":
        deadline = time.monotonic() + WAIT_FOR_THE_OTHER
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    print(run_reactions(int(event_id)))


if __name__ == "__main__":
    main(*sys.argv[1:])
