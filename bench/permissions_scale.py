"""What job permissions cost the lists: server time of the jobs list, page and API, and the runs
list, at 10,000 jobs with access control lists, for an admin (no permission filter: what the
lists cost before permissions existed) and for bob, who may view half of the jobs through his
group (the lists add one SQL EXISTS over the grants, never a query per row).

Every job has its owner's grant, every second one a CAN_VIEW grant to bob's group, every third
one a CAN_MANAGE_RUN grant to carol; each job has one finished run. Admin and bob are timed in
alternating rounds (--requests of them, each request after an untimed one of the same page), so
load from elsewhere on the machine falls on both alike; the medians count. Prints per page the
median ms for both, their ratio, and the issue's target (bob within 1.2x of the admin), then the
number of queries each page took for bob.

Run it from the repository root: `python bench/permissions_scale.py` (SQLite in a temporary
LAKEFLOW_HOME) or `python bench/permissions_scale.py --postgres` (a fresh database on the
PostgreSQL server at 127.0.0.1:5432, dropped at the end).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.dashboard_scale import analyze, create_postgres_database, setup_django  # noqa: E402

JOBS = 10_000
REQUESTS = 15
LIMIT_RATIO = 1.2


def make_jobs(count):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone

    from jobs.models import Job, JobPermission
    from runs.models import Run

    users = get_user_model().objects
    owner = users.create_user("owner")
    bob, carol = users.create_user("bob"), users.create_user("carol")
    team = Group.objects.create(name="analysts")
    bob.groups.add(team)
    settings = {"name": "", "tasks": [{"task_key": "t", "shell_command_task": {"command": "true"}}],
                "max_concurrent_runs": 1}
    now = timezone.now()
    with transaction.atomic():
        for number in range(count):
            job = Job(kind=Job.Kind.JOB, creator=owner)
            version = job.save_version({**settings, "name": f"job {number:05d}"}, owner)  # grants the owner
            grants = []
            if number % 2 == 0:
                grants.append(JobPermission(job=job, group=team, level="CAN_VIEW"))
            if number % 3 == 0:
                grants.append(JobPermission(job=job, user=carol, level="CAN_MANAGE_RUN"))
            JobPermission.objects.bulk_create(grants)
            Run.objects.create(job=job, job_version=version, life_cycle_state="TERMINATED", result_state="SUCCESS",
                               creator=owner, run_as=owner, created_at=now, started_at=now, ended_at=now)
    return bob


def timed(clients, urls, requests):
    """{(who, page): median ms}, the callers in alternating rounds."""
    for who, client in clients.items():
        for url in urls.values():
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"GET {url} answered {response.status_code} for {who}")
    times = {(who, page): [] for who in clients for page in urls}
    for _ in range(requests):
        for who, client in clients.items():
            for page, url in urls.items():
                client.get(url)
                started = time.perf_counter()
                client.get(url)
                times[who, page].append(time.perf_counter() - started)
    return {key: statistics.median(values) * 1000 for key, values in times.items()}


def queries_of(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return len(captured.captured_queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="permissions-bench-"))
    admin_db = create_postgres_database() if args.postgres else None
    setup_django(home, admin_db[2] if admin_db else None)
    try:
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.test.utils import override_settings

        from jobs.models import ApiToken

        started = time.perf_counter()
        bob = make_jobs(args.jobs)
        analyze()
        filled = time.perf_counter() - started
        root = get_user_model().objects.create_superuser("root")
        clients = {}
        with override_settings(ALLOWED_HOSTS=["*"]):
            for who, user in (("admin", root), ("bob", bob)):
                clients[who] = Client(headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"})
                clients[who].force_login(user)
            urls = {"jobs list /": "/", "jobs list, page 50": "/?page=50",
                    "jobs/list API": "/api/2.2/jobs/list?limit=25", "runs list /runs/": "/runs/",
                    "runs/list API": "/api/2.2/jobs/runs/list?limit=25"}
            times = timed(clients, urls, args.requests)
            counts = {page: queries_of(clients["bob"], url) for page, url in urls.items()}
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\n{backend}: {args.jobs:,} jobs with access control lists (filled in {filled:.0f} s); "
              f"bob may view {sum(1 for n in range(args.jobs) if n % 2 == 0):,} of them")
        print(f"{'page (median ms)':<22} {'admin':>8} {'bob':>8} {'ratio':>7}  {'queries':>7}  target")
        for page in urls:
            admin_ms, bob_ms = times["admin", page], times["bob", page]
            print(f"{page:<22} {admin_ms:>8.1f} {bob_ms:>8.1f} {bob_ms / admin_ms:>6.2f}x  {counts[page]:>7}"
                  f"  <= {LIMIT_RATIO}x")
    finally:
        if admin_db:
            from bench.dashboard_scale import drop_postgres_database

            drop_postgres_database(admin_db[0], admin_db[1])


if __name__ == "__main__":
    main()
