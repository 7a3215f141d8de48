"""Server time of the dashboard's pages at 1,000 and at 1,000,000 task runs.

Fills a fresh database with finished runs (rows written in batches, no task executed) to
1,000 task runs, keeps a copy of it, fills on to --rows, and then times the pages of both,
signed in with Django's test Client: the wall time of `client.get(url)` in this process is the
server time of the page (middleware, session, queries, template), with no network in between.
The two sizes are timed in alternating rounds (--requests of them, each request after an
untimed one of the same page), so load from other work on the machine falls on both alike;
the median counts. The pages:

- the jobs list `/` (25 jobs, the newest 8 runs of each);
- the job page `/jobs/<id>/` of the big job (runs x tasks matrix of its latest 25 runs, the
  duration chart of its last 200 finished runs);
- the run page `/jobs/<id>/runs/<run_id>/` of the big job's newest successful run (graph
  snapshot, Gantt), and of its newest failed run (the same plus the root-cause panel, which
  searches the job's earlier runs);
- the runs list `/runs/`.

Shape: JOBS jobs. The big job has 10 tasks in four dependency levels and holds --share of all
task runs (half by default), so its history is the deep one; the other jobs have 1 to 20
independent tasks each. Runs of all jobs interleave one minute apart, oldest first, so the
1,000-row database is the oldest part of the full one. Every 20th run of a job fails: one task
fails twice (a retry), its downstream tasks end UPSTREAM_FAILED. Every run has three RunEvent
rows. ANALYZE runs after each fill.

Prints, per page, the median ms at 1,000 task runs and at --rows, their ratio, and the target
(DESIGN.md: job page and run page <= 150 ms at 1,000,000 task runs and <= 1.2x their time at
1,000; issue 20: the jobs list too, although at 1,000 task runs it has fewer chips to draw, most
jobs having fewer than 8 runs then), then the fill rate. --queries also prints each page's queries with their times at the
full size.

Run it from the repository root: `python bench/dashboard_scale.py` (SQLite in a temporary
LAKEFLOW_HOME) or `python bench/dashboard_scale.py --postgres` (a fresh database on the
PostgreSQL server at 127.0.0.1:5432, dropped at the end); `--rows 50000` for a quick look.
"""

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import postgres_admin_dsn, scale_out_keys  # noqa: E402

JOBS = 50
SMALL = 1_000
REQUESTS = 15
BATCH_TASK_RUNS = 10_000
FAIL_EVERY = 20  # every 20th run of a job fails
LIMIT_MS = 150
LIMIT_RATIO = 1.2
SMALL_SUFFIX = "_small"  # the copy of the database at SMALL task runs

# The big job: extract -> four cleaners -> four loaders (one per cleaner) -> report.
BIG_TASKS = (
    [("extract", [])]
    + [(f"clean_{i}", ["extract"]) for i in range(4)]
    + [(f"load_{i}", [f"clean_{i}"]) for i in range(4)]
    + [("report", [f"load_{i}" for i in range(4)])]
)
BIG_LEVELS = {"extract": 0, **{f"clean_{i}": 1 for i in range(4)}, **{f"load_{i}": 2 for i in range(4)}, "report": 3}
ERROR = "ValueError: row 17 has no customer_id"
TRACE = 'Traceback (most recent call last):\n  File "clean.py", line 12, in <module>\n    check(row)\n' + ERROR


# --- database ----------------------------------------------------------------------------------


def create_postgres_database():
    import psycopg

    dsn, user = postgres_admin_dsn()
    name = f"lakeflow_bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return dsn, name, f"postgresql://{user}@127.0.0.1:5432/{name}"


def drop_postgres_database(dsn, name):
    import psycopg

    from django.db import connections

    connections.close_all()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for database in (name, f"{name}{SMALL_SUFFIX}"):
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def setup_django(home, database_url):
    os.environ["LAKEFLOW_HOME"] = str(home)
    os.environ["DJANGO_SETTINGS_MODULE"] = "lakeflow_site.settings"
    os.environ.pop("DEBUG", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
        for name, key in scale_out_keys().items():  # required with Postgres
            os.environ[name] = os.environ.get(name) or key
    else:
        os.environ.pop("DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def analyze():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- data --------------------------------------------------------------------------------------


def make_jobs(user):
    from jobs.checks import check_settings_against_server
    from jobs.models import Job
    from jobs.spec.settings import validate_job_settings

    def save(name, tasks):
        body = {"name": name, "tasks": tasks, "max_concurrent_runs": 1,
                "trigger": {"periodic": {"interval": 1, "unit": "HOURS"}, "pause_status": "PAUSED"}}
        job = Job(kind=Job.Kind.JOB, creator=user)
        job.save_version(check_settings_against_server(validate_job_settings(body)), user)
        return job

    big = save("big-etl", [
        {"task_key": key, "shell_command_task": {"command": f"echo {key}"},
         **({"depends_on": [{"task_key": d} for d in deps]} if deps else {})}
        for key, deps in BIG_TASKS
    ])
    small = []
    for j in range(1, JOBS):
        count = 1 + (j * 7) % 20
        small.append(save(f"job-{j:02d}", [{"task_key": f"task_{t}", "shell_command_task": {"command": "true"}}
                                           for t in range(count)]))
    return big, small


class Filler:
    """Appends finished runs, oldest first, one minute apart, until the database holds a given
    number of task runs. The big job's share of task runs is `share`; after `rows` task runs the
    newest run is about now. Rows get their ids here (nothing else writes to the database) and
    go in with insert_rows."""

    def __init__(self, big, small, share, rows):
        from django.utils import timezone

        self.rng = random.Random(5)
        self.tasks = {big.id: [key for key, _ in BIG_TASKS]}
        for job in small:
            self.tasks[job.id] = [t["task_key"] for t in job.settings["tasks"]]
        self.versions = {job.id: job.current_version_id for job in (big, *small)}
        mean_small = statistics.mean(len(self.tasks[job.id]) for job in small)
        # P(a run is the big job's) such that its task runs are `share` of all of them.
        self.p_big = share * mean_small / (len(BIG_TASKS) * (1 - share) + share * mean_small) if share < 1 else 1.0
        self.big, self.small = big, small
        self.numbers = dict.fromkeys(self.versions, 0)
        mean_tasks = self.p_big * len(BIG_TASKS) + (1 - self.p_big) * mean_small
        self.clock = timezone.now() - timedelta(minutes=rows / mean_tasks)
        self.ids = {"run": 0, "task_run": 0, "event": 0}
        self.task_runs = 0
        self.runs = 0

    def next_id(self, table):
        self.ids[table] += 1
        return self.ids[table]

    def fill_to(self, target):
        from django.db import transaction

        from runs.models import Run, RunEvent, TaskRun

        while self.task_runs < target:
            runs, task_runs, events = [], [], []
            while len(task_runs) < min(BATCH_TASK_RUNS, target - self.task_runs):
                self.plan_run(runs, task_runs, events)
            with transaction.atomic():
                insert_rows(Run, runs)
                insert_rows(TaskRun, task_runs)
                insert_rows(RunEvent, events)
            self.task_runs += len(task_runs)
            self.runs += len(runs)
        reset_sequences([Run, TaskRun, RunEvent])

    def plan_run(self, runs, task_runs, events):
        job = self.big if self.rng.random() < self.p_big else self.rng.choice(self.small)
        self.numbers[job.id] += 1
        failed = self.numbers[job.id] % FAIL_EVERY == 0
        run_id, created = self.next_id("run"), self.clock
        attempts = self.attempts(job, run_id, created, failed)
        ended = max(a["ended_at"] for a in attempts if a.get("ended_at"))
        result = "FAILED" if failed else "SUCCESS"
        runs.append(dict(
            id=run_id, job_id=job.id, job_version_id=self.versions[job.id], trigger="PERIODIC",
            life_cycle_state="TERMINATED", result_state=result,
            termination_code="RUN_EXECUTION_ERROR" if failed else "SUCCESS",
            termination_type="CLIENT_ERROR" if failed else "SUCCESS",
            state_message=f"Task {attempts[0]['task_key']} failed with message: {ERROR}" if failed else "",
            job_parameters=[], created_at=created, started_at=created + timedelta(seconds=1), ended_at=ended,
            trigger_time=created, trigger_slot=created))
        task_runs += attempts
        events += [dict(id=self.next_id("event"), run_id=run_id, type=kind, at=at, data=data)
                   for kind, at, data in (("run.queued", created, {}), ("run.started", created, {}),
                                          ("run.finished", ended, {"result_state": result}))]
        self.clock += timedelta(minutes=1)

    def attempts(self, job, run_id, created, failed):
        """The run's TaskRun rows, the failing task's first when it failed."""
        keys = self.tasks[job.id]
        if job.id == self.big.id:
            broken = f"clean_{self.numbers[job.id] // FAIL_EVERY % 4}" if failed else None
            skipped = {broken.replace("clean", "load"), "report"} if failed else set()
            levels = BIG_LEVELS
        else:
            broken, skipped, levels = (keys[0] if failed else None), set(), {}
        rows = []
        for key in ([broken] if broken else []) + [k for k in keys if k != broken]:
            begin = created + timedelta(seconds=2 + 60 * levels.get(key, 0) + self.rng.random())
            seconds = timedelta(seconds=5 + self.rng.random() * 40)
            common = dict(run_id=run_id, task_key=key, task_type="shell_command_task", for_each_key="",
                          life_cycle_state="TERMINATED", created_at=created, queued_at=begin)
            if key in skipped:
                rows.append(dict(common, id=self.next_id("task_run"), attempt_number=0, is_current=True,
                                 result_state="UPSTREAM_FAILED", termination_code="SKIPPED",
                                 state_message=f"Upstream task {broken} failed"))
                continue
            failure = dict(result_state="FAILED", termination_code="RUN_EXECUTION_ERROR",
                           termination_type="CLIENT_ERROR", exit_code=1, error=ERROR, error_trace=TRACE,
                           state_message=ERROR)
            if key == broken:  # the first attempt and its retry both fail
                rows.append(dict(common, **failure, id=self.next_id("task_run"), attempt_number=0,
                                 is_current=False, started_at=begin, ended_at=begin + seconds))
                begin += seconds + timedelta(seconds=1)
            outcome = failure if key == broken else dict(result_state="SUCCESS", termination_code="SUCCESS",
                                                         termination_type="SUCCESS", exit_code=0)
            rows.append(dict(common, **outcome, id=self.next_id("task_run"), attempt_number=int(key == broken),
                             is_current=True, started_at=begin, ended_at=begin + seconds))
        return rows


def insert_rows(model, rows):
    """Insert dicts of attribute values; a field left out gets its model default.

    The ORM's bulk_create spends most of its time compiling the INSERT per batch; this writes
    the same values (prepared by the fields themselves) with executemany on SQLite and COPY on
    PostgreSQL, about ten times faster.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    if not rows:
        return
    connection = connections[DEFAULT_DB_ALIAS]  # not the proxy: this runs for every value
    fields = model._meta.concrete_fields
    prepare = [field_preparer(field, connection) for field in fields]
    defaults = [prep(field.get_default()) for field, prep in zip(fields, prepare)]
    values = [tuple(prep(row[f.attname]) if f.attname in row else default
                    for f, prep, default in zip(fields, prepare, defaults)) for row in rows]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


def field_preparer(field, connection):
    from django.db import models

    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value  # the backend's half of get_db_prep_save
    if isinstance(field, models.JSONField):
        return lambda value: field.get_db_prep_save(value, connection)
    return lambda value: value


def reset_sequences(models):
    """PostgreSQL: ids were given explicitly, so move each id sequence past them."""
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(sql)


# --- measuring ---------------------------------------------------------------------------------


def pages(big):
    from runs.models import Run

    runs = Run.objects.filter(job=big).order_by("-id")
    succeeded = runs.filter(result_state="SUCCESS").values_list("id", flat=True).first()
    failed = runs.filter(result_state="FAILED").values_list("id", flat=True).first()
    return [
        ("jobs list  /", "/"),
        ("job page   /jobs/<big>/", f"/jobs/{big.id}/"),
        ("run page   (succeeded run)", f"/jobs/{big.id}/runs/{succeeded}/"),
        ("run page   (failed run, root cause)", f"/jobs/{big.id}/runs/{failed}/"),
        ("runs list  /runs/", "/runs/"),
    ]


def copy_database(admin_dsn):
    """A copy of the database as it is now, to time its pages beside the grown one later;
    returns the copy's NAME for the connection settings."""
    from django.db import connection, connections

    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        import psycopg

        copy = f"{name}{SMALL_SUFFIX}"
        connections.close_all()  # CREATE DATABASE ... TEMPLATE wants no other session on it
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {copy} TEMPLATE {name}")
        return copy
    import sqlite3

    copy = Path(name).with_name("small.sqlite3")
    connection.ensure_connection()
    with sqlite3.connect(copy) as target:
        connection.connection.backup(target)
    return copy


def use_database(name):
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def measure(client, big, databases, requests):
    """{(database label, page): median ms} of the dashboard's pages (measure_pages)."""
    urls = {}
    for label, name in databases.items():
        use_database(name)
        urls[label] = dict(pages(big))
    return measure_pages(client, databases, urls, requests)


def measure_pages(client, databases, urls, requests):
    """{(database label, page): median ms}; urls: {database label: {page: url}}.

    The sizes are timed in alternating rounds, each page once per round after one untimed
    request (which pays for the reconnect), so load from elsewhere on the machine (this is a
    shared 2-core box) falls on both sizes alike instead of skewing their ratio.
    """
    for label, name in databases.items():
        use_database(name)
        for url in urls[label].values():
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"GET {url} answered {response.status_code} on the {label} database")
    times = {(label, page): [] for label in databases for page in urls[label]}
    for _ in range(requests):
        for label, name in databases.items():
            use_database(name)
            for page, url in urls[label].items():
                client.get(url)  # warm: this connection's cache of the database's pages
                started = time.perf_counter()
                client.get(url)
                times[label, page].append(time.perf_counter() - started)
    return {key: statistics.median(values) * 1000 for key, values in times.items()}


def print_queries(client, big):
    print_page_queries(client, pages(big))


def print_page_queries(client, named_urls):
    """Each page's queries, with the time each took, slowest first; named_urls: [(name, url)]."""
    from django.db import connection

    for name, url in named_urls:
        client.get(url)
        timed = []

        def timer(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timed.append((time.perf_counter() - started, f"{sql}  -- {params}" if params else sql))

        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            client.get(url)
            total = time.perf_counter() - started
        in_queries = sum(seconds for seconds, _ in timed)
        print(f"\n{name}  {url}: {total * 1000:.1f} ms, {len(timed)} queries taking {in_queries * 1000:.1f} ms")
        for seconds, sql in sorted(timed, reverse=True)[:8]:
            print(f"  {seconds * 1000:7.2f} ms  {sql[:240]}")


def report(times, small_rows, full_rows):
    print(f"\n{'page (median ms)':<40} {f'{small_rows:,} rows':>12} {f'{full_rows:,} rows':>14} {'ratio':>7}  target")
    for (label, name), small_ms in times.items():
        if label != "small":
            continue
        full_ms = times["full", name]
        ratio = full_ms / small_ms
        target = ""
        if name.startswith(("jobs list", "job page", "run page")):
            ok = full_ms <= LIMIT_MS and ratio <= LIMIT_RATIO
            target = f"{'met' if ok else 'MISSED'} (<= {LIMIT_MS} ms, <= {LIMIT_RATIO}x)"
        print(f"{name:<40} {small_ms:9.1f} ms {full_ms:11.1f} ms {ratio:6.2f}x  {target}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="task runs in the full database")
    parser.add_argument("--share", type=float, default=0.5, help="the big job's share of the task runs")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed requests per page")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on 127.0.0.1:5432")
    parser.add_argument("--queries", action="store_true", help="print each page's queries at full size")
    args = parser.parse_args()
    if not 0 < args.share <= 1 or args.rows <= SMALL:
        parser.error(f"--share must be in (0, 1] and --rows above {SMALL}")

    home = tempfile.TemporaryDirectory(prefix="lakeflow-bench-")
    postgres = create_postgres_database() if args.postgres else None
    try:
        setup_django(Path(home.name), postgres[2] if postgres else None)
        run(args, admin_dsn=postgres[0] if postgres else None)
    finally:
        if postgres:
            drop_postgres_database(postgres[0], postgres[1])
        home.cleanup()


def run(args, admin_dsn):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client, override_settings

    user = get_user_model().objects.create_user("bench", password="bench-password", is_staff=True)
    big, small = make_jobs(user)
    filler = Filler(big, small, args.share, args.rows)
    database = f"{connection.vendor} {connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}"
    print(f"database: {database.strip()}; {JOBS} jobs; the big job (10 tasks, 4 levels) holds "
          f"{args.share:.0%} of the task runs; every {FAIL_EVERY}th run fails with a retried task")

    client = Client()
    client.force_login(user)
    with override_settings(ALLOWED_HOSTS=["*"]):
        filler.fill_to(SMALL)
        analyze()
        small_rows, small_runs = filler.task_runs, filler.runs
        # Not all of the difference is the database: at 1,000 rows the pages have less to show.
        print(f"at {small_rows:,} task runs the big job has {filler.numbers[big.id]} runs (its chart shows "
              f"{min(filler.numbers[big.id], 200)} of at most 200) and most other jobs have fewer than 8 runs to list")
        small_database = copy_database(admin_dsn)
        full_database = connection.settings_dict["NAME"]

        started = time.perf_counter()
        filler.fill_to(args.rows)
        fill_seconds = time.perf_counter() - started
        started = time.perf_counter()
        analyze()
        analyze_seconds = time.perf_counter() - started
        big_runs = filler.numbers[big.id]
        print(f"filled {filler.task_runs - small_rows:,} task runs ({filler.runs - small_runs:,} runs, "
              f"{3 * (filler.runs - small_runs):,} events) in {fill_seconds:.1f} s "
              f"({(filler.task_runs - small_rows) / fill_seconds:,.0f} task runs/s); ANALYZE {analyze_seconds:.1f} s")
        print(f"the big job: {big_runs:,} runs, {big_runs * len(BIG_TASKS):,}+ task runs of {filler.task_runs:,}")
        load = os.getloadavg()[0]
        times = measure(client, big, {"small": small_database, "full": full_database}, args.requests)
        print(f"load average while timing: {load:.1f} before, {os.getloadavg()[0]:.1f} after "
              f"({os.cpu_count()} CPUs; other work on the machine slows both sizes alike)")
        report(times, small_rows, filler.task_runs)
        if args.queries:
            use_database(full_database)
            print_queries(client, big)

if __name__ == "__main__":
    main()
