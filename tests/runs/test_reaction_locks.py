"""Issue 20 review: an event's atomic reactions now share one transaction, so a lock one
reaction takes is still held while the next runs. A backfill run's end: admit_next_queued_runs
takes its job's admission lock (when the job has a queued run), then drive_after_a_run locks the
backfill and then the job again (drive_backfill -> create_run). The clock's safety net
(drive_running_backfills -> drive_backfill) locks the backfill, then the job: the opposite order,
a deadlock on Postgres. Before, the admission reaction had committed (and let go of the job's
lock) before the backfill's reaction began.

Postgres only: the probe asks another connection whether the job's row is locked."""

import psycopg
import pytest
from django.db import connection

from jobs.models import Job
from runs.admission import create_run
from runs.engine.states import RunLifeCycleState as L
from runs.models import Run, RunEvent
from runs.reactions import run_reactions
from tests.runs.conftest import make_job, shell
from tests.runs.test_reactions import crash_after_commit, run_to_the_end  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: Postgres")


def job_row_locked_elsewhere(job_id):
    s = connection.settings_dict
    with psycopg.connect(dbname=s["NAME"], user=s["USER"], host=s["HOST"], port=s["PORT"], autocommit=True) as other:
        try:
            other.execute(f'SELECT id FROM "{Job._meta.db_table}" WHERE id = %s FOR UPDATE NOWAIT', [job_id])
            return False
        except psycopg.errors.LockNotAvailable:
            return True


def test_a_backfill_runs_reaction_does_not_hold_its_jobs_admission_lock(alice, broker, crash_after_commit,  # noqa: F811
                                                                      monkeypatch):
    job = make_job(alice, [shell("t")], max_concurrent_runs=1, queue={"enabled": True})
    first, _ = create_run(job)
    second, _ = create_run(job)
    assert Run.objects.get(id=second.id).life_cycle_state == L.QUEUED
    Run.objects.filter(id=first.id).update(trigger=Run.Trigger.BACKFILL, trigger_details={"backfill": {"id": 7}})
    seen = []
    # drive_backfill locks the backfill (drive_seq), then the job (create_run's admission).
    monkeypatch.setattr("backfills.driving.drive_backfill", lambda backfill_id, now=None: seen.append(
        job_row_locked_elsewhere(job.id)))
    run_to_the_end(first)
    finished = RunEvent.objects.get(run=first, type="run.finished")

    run_reactions(finished.id)

    assert Run.objects.get(id=second.id).life_cycle_state == L.RUNNING  # admitted by the reaction
    assert seen == [False], "the backfill's reaction starts while the job's admission lock is held"
