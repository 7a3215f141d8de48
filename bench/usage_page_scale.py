"""Server time of the Usage page (/usage/) at 1,000 and at 1,000,000 task runs.

The same database as bench/dashboard_scale.py (its Filler: 50 jobs, finished runs one minute
apart, the newest about now, so 1,000,000 task runs span about ten weeks), with a measured cost
and CPU time on every run (Run's sums, as the worker adds them up as attempts end). The page
reads those sums, never the task runs: one GROUP BY job over the runs created in the range (the
totals and both rankings) and one for the top jobs' cost per day, so its time follows the runs
in the range, not the task runs.

Prints, per range, the median ms at 1,000 task runs and at --rows with the number of runs the
range holds, signed in as a user who owns every job (the permission filter applies) and as an
admin (no filter). --queries prints the page's queries with their times at the full size.

Run it from the repository root: `python bench/usage_page_scale.py` (SQLite) or with
`--postgres`; `--rows 50000` for a quick look.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.dashboard_scale import (  # noqa: E402
    SMALL,
    Filler,
    analyze,
    copy_database,
    create_postgres_database,
    drop_postgres_database,
    make_jobs,
    measure_pages,
    print_page_queries,
    setup_django,
    use_database,
)

REQUESTS = 11
RANGES = ["24h", "7d", "30d", "90d"]


def price_runs():
    """Every run gets a cost and CPU time (the rows are written without them)."""
    from django.db.models import F

    from runs.models import Run

    Run.objects.update(cpu_seconds=(F("id") % 97) * 0.5, cost=(F("id") % 97) * 0.00001)


def runs_in(key):
    from django.utils import timezone

    from runs.models import Run
    from runs.usage_pages import PRESETS

    return Run.objects.filter(created_at__gte=timezone.now() - PRESETS[key][1]).count()


def run(args, admin_dsn):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client, override_settings

    owner = get_user_model().objects.create_user("bench", password="bench-password")
    admin = get_user_model().objects.create_user("root", password="bench-password", is_superuser=True)
    big, small = make_jobs(owner)
    filler = Filler(big, small, 0.5, args.rows)
    clients = {}
    for label, user in (("owner", owner), ("admin", admin)):
        clients[label] = Client()
        clients[label].force_login(user)
    with override_settings(ALLOWED_HOSTS=["*"]):
        filler.fill_to(SMALL)
        price_runs()
        analyze()
        small_rows = filler.task_runs
        small_database = copy_database(admin_dsn)
        full_database = connection.settings_dict["NAME"]
        started = time.perf_counter()
        filler.fill_to(args.rows)
        price_runs()
        analyze()
        print(f"database: {connection.vendor}; filled {filler.task_runs:,} task runs ({filler.runs:,} runs) "
              f"in {time.perf_counter() - started:.1f} s")
        counts = {key: runs_in(key) for key in RANGES}
        urls = {label: {f"{who:<5} /usage/?range={key}": f"/usage/?range={key}" for key in RANGES for who in clients}
                for label in ("small", "full")}
        databases = {"small": small_database, "full": full_database}
        times = {}
        for who, client in clients.items():
            mine = {label: {page: url for page, url in pages.items() if page.startswith(who)}
                    for label, pages in urls.items()}
            times.update(measure_pages(client, databases, mine, args.requests))
        print(f"\n{'page (median ms)':<32} {f'{small_rows:,} rows':>12} {f'{filler.task_runs:,} rows':>14}"
              f"  runs in the range")
        for who in clients:
            for key in RANGES:
                page = f"{who:<5} /usage/?range={key}"
                print(f"{page:<32} {times['small', page]:9.1f} ms {times['full', page]:11.1f} ms  {counts[key]:,}")
        if args.queries:
            use_database(full_database)
            print_page_queries(clients["owner"], [("usage 90 d (owner)", "/usage/?range=90d")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="task runs in the full database")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed requests per page")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on 127.0.0.1:5432")
    parser.add_argument("--queries", action="store_true", help="print the page's queries at full size")
    args = parser.parse_args()
    home = tempfile.TemporaryDirectory(prefix="lakeflow-bench-")
    postgres = create_postgres_database() if args.postgres else None
    try:
        setup_django(Path(home.name), postgres[2] if postgres else None)
        run(args, admin_dsn=postgres[0] if postgres else None)
    finally:
        if postgres:
            drop_postgres_database(postgres[0], postgres[1])
        home.cleanup()


if __name__ == "__main__":
    main()
