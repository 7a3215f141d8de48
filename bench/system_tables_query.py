"""How fast a typical query over system.lakeflow.job_task_run_timeline answers at 1,000,000 task runs.

Fills a fresh database (rows written in batches, no task executed) with --rows task runs over
--jobs jobs: runs spread over the last 60 days, 1 to 8 tasks each, every 20th run with a failed
attempt and its retry, every 500th run longer than an hour (so the hourly slices are there), the
usage columns filled. Then times, as the query page runs it (system_tables/queries.py: DuckDB
attaches the database read-only, creates the views for the identity, runs the query), the query:

    per job: task runs, average and p95 execution time over the last 30 days, the 20 slowest

for an admin (every job) and for a user who may view 100 jobs, --repeat times each; prints the
median, and its parts: opening (attach + views) and the query itself. The target (issue 19):
<= 1 s. DuckDB reads the attached tables itself (its SQLite scanner reads whole tables; with
PostgreSQL it pushes filters into the scan), so the time grows with the table, not the result.

Run it from the repository root: `python bench/system_tables_query.py` (SQLite in a temporary
LAKEFLOW_HOME) or `python bench/system_tables_query.py --postgres` (a fresh database on the
PostgreSQL server at 127.0.0.1:5432, dropped at the end); `--rows 100000` for a quick look.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.dashboard_scale import (  # noqa: E402
    analyze,
    create_postgres_database,
    drop_postgres_database,
    insert_rows,
    reset_sequences,
    setup_django,
)

JOBS = 1_000
DAYS = 60
BATCH_TASK_RUNS = 20_000
FAIL_EVERY = 20
LONG_EVERY = 500
REPEAT = 5
TARGET_SECONDS = 1.0
VIEWER_JOBS = 100

QUERY = """
SELECT job_id,
       count(*) AS task_runs,
       round(avg(execution_duration_seconds), 1) AS avg_execution_s,
       round(quantile_cont(execution_duration_seconds, 0.95), 1) AS p95_execution_s
FROM system.lakeflow.job_task_run_timeline
WHERE period_start_time >= now() - INTERVAL 30 DAYS AND result_state IS NOT NULL
GROUP BY job_id
ORDER BY p95_execution_s DESC
LIMIT 20
"""


def make_jobs(user, count):
    """`count` jobs of 1 to 8 tasks (versions written directly: validation is not what is timed)."""
    from jobs.models import Job, JobPermission, JobVersion

    rng = random.Random(7)
    jobs = []
    for n in range(count):
        tasks = [{"task_key": f"task_{t}", "shell_command_task": {"command": "true"}}
                 for t in range(rng.randint(1, 8))]
        if n % 10 == 0:  # some SQL tasks: their compute is a warehouse
            tasks[0] = {"task_key": "task_0", "sql_task": {"warehouse_id": "default", "query": {"query_text": "SELECT 1"}}}
        job = Job.objects.create(kind=Job.Kind.JOB, name=f"job-{n:04d}", creator=user)
        version = JobVersion.objects.create(job=job, number=1, settings={"name": job.name, "tasks": tasks}, created_by=user)
        Job.objects.filter(id=job.id).update(current_version=version)
        JobPermission.objects.create(job=job, user=user, level="IS_OWNER")
        jobs.append((job.id, version.id, tasks))
    return jobs


class Filler:
    """Finished runs, oldest first, evenly spread over the last DAYS days."""

    def __init__(self, jobs, rows, now):
        self.rng = random.Random(5)
        self.jobs = jobs
        mean_tasks = statistics.mean(len(tasks) for _, _, tasks in jobs)
        self.step = timedelta(days=DAYS) / (rows / mean_tasks)
        self.clock = now - timedelta(days=DAYS)
        self.ids = {"run": 0, "task_run": 0}
        self.task_runs = self.runs = 0

    def next_id(self, table):
        self.ids[table] += 1
        return self.ids[table]

    def fill_to(self, target):
        from django.db import transaction

        from runs.models import Run, TaskRun

        while self.task_runs < target:
            runs, task_runs = [], []
            while len(task_runs) < min(BATCH_TASK_RUNS, target - self.task_runs):
                self.plan_run(runs, task_runs)
            with transaction.atomic():
                insert_rows(Run, runs)
                insert_rows(TaskRun, task_runs)
            self.task_runs += len(task_runs)
            self.runs += len(runs)
        reset_sequences([Run, TaskRun])

    def plan_run(self, runs, task_runs):
        job_id, version_id, tasks = self.rng.choice(self.jobs)
        run_id, created = self.next_id("run"), self.clock
        self.runs_made = getattr(self, "runs_made", 0) + 1
        failed = self.runs_made % FAIL_EVERY == 0
        long = self.runs_made % LONG_EVERY == 0
        begin = created + timedelta(seconds=1)
        attempts = []
        for task in tasks:
            seconds = timedelta(seconds=(3700 if long else 5 + self.rng.random() * 120))
            sql = "sql_task" in task
            common = dict(run_id=run_id, task_key=task["task_key"], task_type="sql_task" if sql else "shell_command_task",
                          for_each_key="", life_cycle_state="TERMINATED", created_at=created, queued_at=begin,
                          worker_host="bench-host", setup_duration_ms=self.rng.randint(0, 500),
                          cleanup_duration_ms=self.rng.randint(1, 20),
                          cpu_seconds=seconds.total_seconds() * 0.3, peak_memory_bytes=50_000_000,
                          read_bytes=1_000_000, written_bytes=200_000, cost=0.0001,
                          resolved_values={"shell_command_task": {"command": "true"}},
                          data_access={"sql": {"warehouse_id": "default", "dialect": "duckdb", "statements": ["SELECT 1"],
                                               "row_counts": [None], "schema": {}}} if sql else None)
            if failed and task is tasks[0]:
                attempts.append(dict(common, id=self.next_id("task_run"), attempt_number=0, is_current=False,
                                     result_state="FAILED", termination_code="RUN_EXECUTION_ERROR",
                                     termination_type="CLIENT_ERROR", started_at=begin, ended_at=begin + seconds,
                                     error="ValueError: boom"))
                begin += seconds + timedelta(seconds=1)
            attempts.append(dict(common, id=self.next_id("task_run"), attempt_number=int(failed and task is tasks[0]),
                                 is_current=True, result_state="SUCCESS", termination_code="SUCCESS",
                                 termination_type="SUCCESS", started_at=begin, ended_at=begin + seconds))
        ended = max(a["ended_at"] for a in attempts)
        runs.append(dict(id=run_id, job_id=job_id, job_version_id=version_id, trigger="PERIODIC",
                         life_cycle_state="TERMINATED", result_state="SUCCESS", termination_code="SUCCESS",
                         termination_type="SUCCESS", job_parameters=[{"name": "day", "default": "", "value": "x"}],
                         created_at=created, started_at=begin, ended_at=ended))
        task_runs += attempts
        self.clock += self.step


def timed(user, query, repeat):
    """Medians of (total, opening, query) seconds, the query's CPU seconds (all threads) and the
    answer, as the page runs it. The first round is not counted: it reads the file into the page
    cache and makes the connection the page keeps for this identity; every timed round still
    reads every row from the database again."""
    from system_tables.queries import kept, open_for, run_on, scope_for

    totals, openings, queries, cpu, answer = [], [], [], [], None
    for round in range(repeat + 1):
        if round:
            kept.clear()  # opening counts: the attach and the views, as for a new identity
        started, cpu_started = time.perf_counter(), time.process_time()
        with open_for(scope_for(user)) as cursor:
            opened = time.perf_counter()
            answer = run_on(cursor, query, max_rows=1000)
        ended = time.perf_counter()
        if round:
            totals.append(ended - started)
            openings.append(opened - started)
            queries.append(ended - opened)
            cpu.append(time.process_time() - cpu_started)
    return (statistics.median(totals), statistics.median(openings), statistics.median(queries),
            statistics.median(cpu), answer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="task runs in the database")
    parser.add_argument("--jobs", type=int, default=JOBS, help="jobs the runs belong to")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="timed queries per identity")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on 127.0.0.1:5432")
    parser.add_argument("--home", help="keep the database in this LAKEFLOW_HOME (SQLite) and reuse it when full")
    args = parser.parse_args()

    home = None if args.home else tempfile.TemporaryDirectory(prefix="lakeflow-bench-")
    postgres = create_postgres_database() if args.postgres else None
    try:
        setup_django(Path(args.home or home.name), postgres[2] if postgres else None)
        run(args)
    finally:
        if postgres:
            drop_postgres_database(postgres[0], postgres[1])
        if home:
            home.cleanup()


def run(args):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from jobs.models import JobPermission
    from runs.models import TaskRun

    users = get_user_model().objects
    admin = users.filter(username="bench-admin").first()
    if admin is None or TaskRun.objects.count() < args.rows:
        admin = users.create_superuser("bench-admin", password="bench-password")
        viewer = users.create_user("bench-viewer", password="bench-password")
        jobs = make_jobs(admin, args.jobs)
        JobPermission.objects.bulk_create([JobPermission(job_id=job_id, user=viewer, level="CAN_VIEW")
                                           for job_id, _, _ in jobs[:VIEWER_JOBS]])
        filler = Filler(jobs, args.rows, timezone.now())
        started = time.perf_counter()
        filler.fill_to(args.rows)
        seconds = time.perf_counter() - started
        analyze()
        print(f"filled {filler.task_runs:,} task runs ({filler.runs:,} runs of {args.jobs:,} jobs) in {seconds:.1f} s "
              f"({filler.task_runs / seconds:,.0f} task runs/s)")
    viewer = users.get(username="bench-viewer")
    print(f"database: {connection.vendor}; {TaskRun.objects.count():,} task runs; query:{QUERY}")
    print(f"load average before timing: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs, DuckDB uses all of them)")
    for label, user in (("admin (every job)", admin), (f"viewer of {VIEWER_JOBS} jobs", viewer)):
        total, opening, query, cpu, answer = timed(user, QUERY, args.repeat)
        met = "met" if total <= TARGET_SECONDS else "MISSED"
        print(f"{label:<22} median of {args.repeat}: {total * 1000:7.1f} ms (open {opening * 1000:.1f} ms + "
              f"query {query * 1000:.1f} ms; {cpu * 1000:.0f} ms of CPU), {answer.total} rows; "
              f"target <= {TARGET_SECONDS:.0f} s {met}")
    print(f"load average after timing: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
