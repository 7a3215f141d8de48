"""Notification latency: a burst of runs ending together -> their webhook notifications.

Starts the embedded default (`manage.py serve`: SQLite) and/or the scale-out mode (web + one
qcluster node on Postgres + Redis), makes a generic webhook destination pointing at a loopback
HTTP receiver (tests/notification_receivers.py), and a job of one no-op Python task with a
job-level on_success (or, with --event on_failure, a failing task and on_failure) webhook. It
starts --runs runs of it at once (max_concurrent_runs = --runs: none queues, they end as fast as
the server runs them, 1,000 in 80-130 s on a 2-core machine), waits for their notifications, and
prints, per mode:

- how many runs ended, over how many seconds, and how many notifications arrived (and repeats);
- lag = arrival at the receiver (its clock) - the run's end_time from runs/list (epoch ms, the
  same machine's clock): p50 / p95 / max.

Run it from the repository root: `python bench/notification_latency.py [--mode embedded|scaleout|both]
[--runs 1000] [--event on_success|on_failure]`.
Target: p95 <= 10 s from a run's end to its webhook's arrival.
"""

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import drop_database, start_scaleout, start_serve  # noqa: E402
from tests.notification_receivers import HttpReceiver  # noqa: E402

WAIT_SECONDS = 900  # for the notifications, after the last run was started


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def make_destination(server, w, url):
    """Through POST /api/2.0/notification-destinations; the row itself on a server without it."""
    from databricks.sdk.errors import DatabricksError

    body = {"display_name": "bench receiver", "config": {"generic_webhook": {"url": url}}}
    try:
        return w.api_client.do("POST", "/api/2.0/notification-destinations", body=body)["id"]
    except DatabricksError as exc:
        print(f"  (POST /api/2.0/notification-destinations: {exc}; making the row with manage.py shell)", flush=True)
    code = ("from notifications.models import Destination\n"
            "d = Destination(display_name='bench receiver', destination_type='WEBHOOK')\n"
            f"d.secrets = {{'url': {url!r}}}\n"
            "d.save()\n"
            "print(d.id)")
    return server.manage("shell", "-c", code).strip().splitlines()[-1]


def measure(name, server, runs, event):
    (server.workspace / "noop.py").write_text("")
    w = server.client()
    with HttpReceiver() as receiver:
        destination = make_destination(server, w, receiver.url("/hook"))
        script = "noop.py" if event == "on_success" else "fail.py"  # fail.py: tests/e2e/conftest.py SCRIPTS
        job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={
            "name": f"notify {event}", "max_concurrent_runs": runs,
            "tasks": [{"task_key": "t", "spark_python_task": {"python_file": script}}],
            "webhook_notifications": {event: [{"id": destination}]}})["job_id"]

        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            run_ids = set(pool.map(lambda _: w.api_client.do("POST", "/api/2.2/jobs/run-now", body={
                "job_id": job_id})["run_id"], range(runs)))
        print(f"  {runs} runs started in {time.time() - started:.1f} s", flush=True)

        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and len(receiver.requests) < runs:
            time.sleep(0.5)
        ended = {}
        for run in w.jobs.list_runs(job_id=job_id, completed_only=True):
            if run.run_id in run_ids and run.end_time:
                ended[run.run_id] = run.end_time

    first_arrival = {}
    for request in list(receiver.requests):
        run_id = int(request.json["run"]["run_id"])
        first_arrival.setdefault(run_id, request.at)
    repeats = len(receiver.requests) - len(first_arrival)
    lags = [first_arrival[run_id] - ended[run_id] / 1000 for run_id in first_arrival if run_id in ended]
    span = (max(ended.values()) - min(ended.values())) / 1000 if ended else 0
    print(f"{name}: {len(ended)} of {runs} runs ended within {span:.1f} s; {len(first_arrival)} {event} "
          f"notifications arrived ({repeats} repeats)", flush=True)
    arrivals = sorted(first_arrival.values())
    if len(arrivals) > 1:
        print(f"  the receiver got them over {arrivals[-1] - arrivals[0]:.1f} s "
              f"({(len(arrivals) - 1) / max(arrivals[-1] - arrivals[0], 1e-3):.1f}/s; runs ended at "
              f"{(len(ended) - 1) / max(span, 1e-3):.1f}/s)", flush=True)
    if lags:
        print(f"  lag run end -> webhook: p50={statistics.median(lags) * 1000:.0f} ms  "
              f"p95={percentile(lags, 0.95) * 1000:.0f} ms  max={max(lags) * 1000:.0f} ms", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["embedded", "scaleout", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--event", choices=["on_success", "on_failure"], default="on_success")
    args = parser.parse_args()
    if args.mode in ("embedded", "both"):
        embedded = start_serve(Path(tempfile.mkdtemp(prefix="notify-latency-")), "serve", "--no-demo")
        try:
            measure("embedded (SQLite, ORM broker)", embedded, args.runs, args.event)
        finally:
            embedded.stop()
    if args.mode in ("scaleout", "both"):
        scaleout, database = start_scaleout(Path(tempfile.mkdtemp(prefix="notify-latency-scaleout-")), nodes=1)
        try:
            measure("scale-out (Postgres + Redis, 1 node)", scaleout, args.runs, args.event)
        finally:
            scaleout.stop()
            drop_database(database)


if __name__ == "__main__":
    main()
