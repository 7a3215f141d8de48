"""Server time of the lineage pages at 1,000 and at 1,000,000 edges over 10,000 datasets, and
the time sqlglot capture adds per SQL statement.

Shape: JOBS jobs of four chained tasks; task i of job j writes dataset d(j, i) (JOBS * 4 =
10,000 datasets), task 0 reads the last dataset of the job before it and of one of the ten
before that, tasks 1-3 read their predecessor's dataset: 9 edges per run, a DAG as deep as there are
jobs. Runs go round-robin over the jobs, one minute apart, so the 1,000-edge database holds the
first runs of the first jobs and the full one the same lineage with 400 runs of history behind
each dataset. Rows are written in batches (no task executed), Accesses as capture keeps them.

Timed, signed in with Django's test Client in this process (the wall time of `client.get` is
the server time), in alternating rounds so load elsewhere falls on both sizes alike (medians):
the table page of a middle dataset, the Lineage page centred on it at depth 3, and the
Databricks table-lineage API for it. Then the median capture time of a realistic statement set.

Targets (issue 14): table page and depth-3 graph <= 200 ms and <= 1.2x their time at 1,000
edges; parsing <= 5 ms per statement.

Run from the repository root: `python bench/lineage_scale.py` (SQLite in a temporary
LAKEFLOW_HOME), `--postgres` (a fresh database at 127.0.0.1:5432, dropped at the end),
`--edges 100000` for a quick look.
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from dashboard_scale import (  # noqa: E402
    analyze,
    copy_database,
    create_postgres_database,
    drop_postgres_database,
    insert_rows,
    measure_pages,
    print_page_queries,
    reset_sequences,
    setup_django,
)

JOBS = 2_500
TASKS = 4
SMALL = 1_000
REQUESTS = 15
BATCH_RUNS = 5_000
LIMIT_MS = 200
LIMIT_RATIO = 1.2
PARSE_LIMIT_MS = 5

STATEMENTS = [
    "CREATE OR REPLACE TABLE silver AS SELECT o.id, upper(o.name) AS name, c.region FROM bronze o "
    "JOIN customers c ON c.id = o.customer_id WHERE o.amount > 0",
    "INSERT INTO gold SELECT region, count(*) AS orders, sum(amount) AS total FROM silver GROUP BY region",
    "WITH recent AS (SELECT * FROM silver WHERE ts > now() - INTERVAL 1 DAY) "
    "INSERT INTO daily SELECT region, count(*) FROM recent GROUP BY region",
    "MERGE INTO dims d USING staging s ON d.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name "
    "WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)",
    "UPDATE orders SET status = 'late' FROM shipments s WHERE s.order_id = orders.id AND s.days > 3",
    "DELETE FROM orders USING cancelled c WHERE c.id = orders.id",
    "CREATE VIEW v_totals AS SELECT region, sum(total) AS total FROM gold GROUP BY region",
    "SELECT a.id, b.name FROM silver a JOIN (SELECT id, name FROM dims WHERE active) b ON a.id = b.id",
    "COPY raw_events FROM '/data/events.csv'",
    "CREATE TABLE report AS SELECT g.region, g.total, t.target FROM gold g LEFT JOIN targets t USING (region)",
]
SCHEMA = {"main.bronze": {"id": "INT", "name": "TEXT", "customer_id": "INT", "amount": "DOUBLE", "ts": "TIMESTAMP"},
          "main.customers": {"id": "INT", "region": "TEXT"},
          "main.silver": {"id": "INT", "name": "TEXT", "region": "TEXT", "amount": "DOUBLE", "ts": "TIMESTAMP"},
          "main.gold": {"region": "TEXT", "orders": "BIGINT", "total": "DOUBLE"}}


def dataset_name(job, task):
    return f"default.main.t{job:04d}_{task}"


def make_world(user):
    """The jobs and datasets; returns ({job index: Job}, {name: dataset id})."""
    from jobs.models import Job
    from jobs.spec.settings import validate_job_settings
    from lineage.models import Dataset

    tasks = [{"task_key": f"t{i}", "shell_command_task": {"command": "true"},
              **({"depends_on": [{"task_key": f"t{i - 1}"}]} if i else {})} for i in range(TASKS)]
    jobs = {}
    for j in range(JOBS):
        job = Job(creator=user)
        job.save_version(validate_job_settings({"name": f"pipeline-{j:04d}", "tasks": tasks}), user)
        jobs[j] = job
    Dataset.objects.bulk_create([Dataset(name=dataset_name(j, i), kind="TABLE")
                                 for j in range(JOBS) for i in range(TASKS)], batch_size=2000)
    return jobs, dict(Dataset.objects.values_list("name", "id"))


class Filler:
    def __init__(self, jobs, datasets, edges):
        from django.utils import timezone

        self.rng = random.Random(14)
        self.jobs, self.datasets = jobs, datasets
        # Pipelines feed on their neighbours: a dataset's depth-3 surroundings are the same few
        # jobs at both sizes, and only its history grows.
        self.feeds = {j: (j - 1, max(0, j - self.rng.randint(2, 10))) if j > 1 else () for j in range(JOBS)}
        runs = edges // (1 + 2 * TASKS) + 1
        self.clock = timezone.now() - timedelta(minutes=runs)
        self.next = {"run": 0, "task_run": 0, "edge": 0}
        self.edges = 0
        self.turn = 0
        self.accessed = set()

    def take(self, table):
        self.next[table] += 1
        return self.next[table]

    def fill_to(self, target):
        from django.db import transaction

        from lineage.models import Access, Edge
        from runs.models import Run, TaskRun

        while self.edges < target:
            runs, task_runs, edges, accesses = [], [], [], []
            while len(runs) < BATCH_RUNS and self.edges + len(edges) < target:
                self.plan_run(runs, task_runs, edges, accesses)
            with transaction.atomic():
                insert_rows(Run, runs)
                insert_rows(TaskRun, task_runs)
                insert_rows(Edge, edges)
                Access.objects.bulk_create([Access(**a) for a in accesses], batch_size=2000, ignore_conflicts=True)
            self.edges += len(edges)
        reset_sequences([Run, TaskRun, Edge])

    def plan_run(self, runs, task_runs, edges, accesses):
        j = self.turn % JOBS
        self.turn += 1
        job = self.jobs[j]
        run_id, at = self.take("run"), self.clock
        self.clock += timedelta(minutes=1)
        runs.append(dict(id=run_id, job_id=job.id, job_version_id=job.current_version_id, trigger="PERIODIC",
                         life_cycle_state="TERMINATED", result_state="SUCCESS", termination_code="SUCCESS",
                         termination_type="SUCCESS", job_parameters=[], created_at=at, started_at=at, ended_at=at,
                         trigger_time=at))
        for i in range(TASKS):
            attempt = self.take("task_run")
            task_runs.append(dict(id=attempt, run_id=run_id, task_key=f"t{i}", task_type="sql_task",
                                  life_cycle_state="TERMINATED", result_state="SUCCESS", termination_code="SUCCESS",
                                  termination_type="SUCCESS", created_at=at, started_at=at, ended_at=at,
                                  for_each_key=""))
            reads = [dataset_name(f, TASKS - 1) for f in self.feeds[j]] if i == 0 else [dataset_name(j, i - 1)]
            for direction, name in [("read", n) for n in reads] + [("write", dataset_name(j, i))]:
                edges.append(dict(id=self.take("edge"), dataset_id=self.datasets[name], direction=direction,
                                  source="sql", task_run_id=attempt, run_id=run_id, job_id=job.id, task_key=f"t{i}",
                                  row_count=1000 if direction == "write" else None, at=at))
                key = (self.datasets[name], direction, job.id, f"t{i}")
                if key not in self.accessed:
                    self.accessed.add(key)
                    accesses.append(dict(dataset_id=key[0], direction=direction, job_id=job.id, task_key=f"t{i}",
                                         last_at=at, last_run_id=run_id, last_task_run_id=attempt))


def parse_times(rounds=20):
    from lineage.sql import attempt_lineage

    for statement in STATEMENTS:  # untimed: sqlglot builds each dialect's tables on first use
        attempt_lineage([statement], warehouse_id="default", dialect="duckdb", schema=SCHEMA)
    times = []
    for _ in range(rounds):
        for statement in STATEMENTS:
            started = time.perf_counter()
            attempt_lineage([statement], warehouse_id="default", dialect="duckdb", schema=SCHEMA)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, max(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--queries", action="store_true", help="print each page's queries at the full size")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lineage-bench-"))
    admin = create_postgres_database() if args.postgres else None
    setup_django(home, admin[2] if admin else None)
    try:
        from django.contrib.auth import get_user_model
        from django.test import Client

        user = get_user_model().objects.create_superuser("bench", password="bench")
        started = time.perf_counter()
        jobs, datasets = make_world(user)
        filler = Filler(jobs, datasets, args.edges)
        filler.fill_to(SMALL)
        analyze()
        small = copy_database(admin[0] if admin else None)
        filler.fill_to(args.edges)
        analyze()
        filled = time.perf_counter() - started
        from django.db import connection

        databases = {"small": small, "full": connection.settings_dict["NAME"]}
        middle = dataset_name(30, 2)  # written in the first 1,000 edges too
        urls = {"table page": f"/lineage/tables/{middle}/",
                "graph, depth 3": f"/lineage/?table={middle}&depth=3",
                "table-lineage API": f"/api/2.0/lineage-tracking/table-lineage?table_name={middle}"
                                     "&include_entity_lineage=true"}
        from django.test.utils import override_settings

        # A signed-cookie session: the same sign-in holds on both databases.
        with override_settings(ALLOWED_HOSTS=["*"], SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"):
            client = Client()
            client.force_login(user)
            times = measure_pages(client, databases, {label: urls for label in databases}, args.requests)
            if args.queries:
                print_page_queries(client, list(urls.items()))
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\n{backend}: {len(datasets):,} datasets, {filler.edges:,} edges "
              f"(filled in {filled:.0f} s)")
        print(f"{'page (median ms)':<22} {f'{SMALL:,} edges':>12} {f'{filler.edges:,} edges':>16} {'ratio':>7}  target")
        for page in urls:
            small_ms, full_ms = times["small", page], times["full", page]
            print(f"{page:<22} {small_ms:>12.1f} {full_ms:>16.1f} {full_ms / small_ms:>6.2f}x"
                  f"  <= {LIMIT_MS} ms, <= {LIMIT_RATIO}x")
        median, worst = parse_times()
        print(f"capture per statement: median {median:.2f} ms, slowest {worst:.2f} ms "
              f"({len(STATEMENTS)} statements x 20; target <= {PARSE_LIMIT_MS} ms)")
    finally:
        if admin:
            drop_postgres_database(admin[0], admin[1])


if __name__ == "__main__":
    main()
