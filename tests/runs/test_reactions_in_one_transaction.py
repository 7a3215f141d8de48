"""An event's atomic reactions run together in one transaction, each in a savepoint
(runs/reactions.py run_reactions), and the job's next queued run is admitted without taking the
job's admission lock when nothing is queued (runs/admission.py admit_next_queued_runs)."""

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs import reactions
from runs.admission import create_run
from runs.engine.states import RunLifeCycleState as L
from runs.events import record
from runs.models import Reaction, Run, RunEvent, TableWrite
from runs.reactions import run_reactions
from tests.runs.conftest import make_job, shell
from tests.runs.test_reactions import crash_after_commit, run_to_the_end, test_reactions  # noqa: F401 (fixtures)


def test_a_run_queued_while_the_running_one_ends_starts_when_its_transaction_commits(alice, broker,
                                                                                     crash_after_commit):  # noqa: F811
    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": True})
    first, _ = create_run(job)
    with transaction.atomic():
        second, _ = create_run(job)  # its admission saw the first run active
        assert second.life_cycle_state == L.QUEUED
        run_to_the_end(first)  # and the first run's reaction never sees the second queued

    assert Run.objects.get(id=second.id).life_cycle_state == L.RUNNING
    assert RunEvent.objects.filter(run=second, type="run.started").count() == 1


def test_a_run_end_takes_no_admission_lock_when_nothing_of_its_job_is_queued(alice, broker,
                                                                            crash_after_commit):  # noqa: F811
    job = make_job(alice, [shell("t")])
    run, _ = create_run(job)
    run_to_the_end(run)
    finished = RunEvent.objects.get(run=run, type="run.finished")

    with CaptureQueriesContext(connection) as queries:
        assert run_reactions(finished.id) is True
    assert not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "jobs_job"')]
    assert "runs.admission.admit_next_queued_runs" in set(
        Reaction.objects.filter(event=finished, done_at__isnull=False).values_list("name", flat=True))
    assert not RunEvent.objects.get(id=finished.id).reactions_pending


def test_a_reaction_that_raises_undoes_only_its_own_effects_and_the_others_happen_once(alice, broker,
                                                                                      test_reactions):  # noqa: F811
    def half_done_then_broken(event):
        TableWrite.objects.create(table_name=f"half-of-{event.id}")
        raise RuntimeError("the mail server is down")

    test_reactions.append(reactions.Registered("tests.broken", half_done_then_broken))
    test_reactions.append(reactions.Registered("tests.effect", lambda event: TableWrite.objects.create(
        table_name=f"effect-of-{event.id}")))
    run, _ = create_run(make_job(alice, [shell("t")]))
    event = record(run, "test.happened", None, timezone.now())  # outside a transaction: reacts at once

    assert run_reactions(event.id) is False  # the on-commit try and this one
    assert not TableWrite.objects.filter(table_name=f"half-of-{event.id}").exists()
    assert TableWrite.objects.filter(table_name=f"effect-of-{event.id}").count() == 1
    broken = Reaction.objects.get(event=event, name="tests.broken")
    assert (broken.tries, broken.done_at, broken.error) == (2, None, "RuntimeError: the mail server is down")
    assert Reaction.objects.get(event=event, name="tests.effect").done_at is not None
    assert RunEvent.objects.get(id=event.id).reactions_pending
