"""Hop latency and fan-out throughput of no-op Python tasks, on the embedded default and on
Postgres + Redis, next to the physical limit measured in the same run.

- hop latency: a chain of CHAIN no-op spark_python_tasks; (run end - first task start) / hops,
  i.e. upstream ends -> downstream starts, including each task's process start.
- fan-out: FANOUT independent no-op spark_python_tasks in one job; tasks per second from the
  first start to the last end.
- the limit: the median start of a bare `python -c pass`, as a task process would be at least
  that if each started a fresh interpreter (ours are forked from a warm process instead).

Each figure is the median of REPEATS runs on one server, with their spread.

Run it from the repository root: `python bench/task_throughput.py [--embedded-only]`.
Targets (DESIGN.md): <= 30 ms per hop, >= 100 tasks/s.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import drop_database, start_scaleout, start_serve  # noqa: E402

CHAIN = 50
FANOUT = 500
REPEATS = 3


def bare_interpreter_ms(times=20):
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) * 1000


def noop(key, depends_on=None):
    task = {"task_key": key, "spark_python_task": {"python_file": "noop.py"}}
    if depends_on:
        task["depends_on"] = [{"task_key": depends_on}]
    return task


def finished_run(w, job_id):
    run = w.jobs.run_now(job_id=job_id).result(timeout=timedelta(minutes=30))
    assert run.state.result_state.value == "SUCCESS", run.state
    return run


def hop_ms(w):
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={
        "name": "chain", "tasks": [noop(f"t{i}", f"t{i - 1}" if i else None) for i in range(CHAIN)]})["job_id"]
    run = finished_run(w, job_id)
    tasks = run.tasks
    first = min(t.start_time for t in tasks)
    last = max(t.end_time for t in tasks)
    return (last - first) / (CHAIN - 1)


def fanout_per_second(w):
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={
        "name": "fan-out", "tasks": [noop(f"t{i}") for i in range(FANOUT)]})["job_id"]
    run = finished_run(w, job_id)
    tasks = run.tasks
    span = (max(t.end_time for t in tasks) - min(t.start_time for t in tasks)) / 1000
    return FANOUT / span


def measure(name, server, limit_ms):
    (server.workspace / "noop.py").write_text("")
    w = server.client()
    # The machine is shared and noisy: the median of a few runs, and their spread.
    hops = [hop_ms(w) for _ in range(REPEATS)]
    rates = [fanout_per_second(w) for _ in range(REPEATS)]
    hop, rate = statistics.median(hops), statistics.median(rates)
    print(f"{name}: hop {hop:.0f} ms ({hop / limit_ms:.1f}x a bare interpreter's start; "
          f"{min(hops):.0f}-{max(hops):.0f} over {REPEATS} chains); fan-out {rate:.0f} tasks/s over "
          f"{FANOUT} tasks ({min(rates):.0f}-{max(rates):.0f} over {REPEATS} runs)", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedded-only", action="store_true")
    args = parser.parse_args()
    limit = bare_interpreter_ms()
    print(f"bare `python -c pass`: median {limit:.1f} ms (the limit per task process)", flush=True)
    embedded = start_serve(Path(tempfile.mkdtemp(prefix="throughput-")), "serve", "--no-demo")
    try:
        measure("embedded (SQLite, ORM broker)", embedded, limit)
    finally:
        embedded.stop()
    if args.embedded_only:
        return
    scaleout, database = start_scaleout(Path(tempfile.mkdtemp(prefix="throughput-scaleout-")), nodes=1)
    try:
        measure("scale-out (Postgres + Redis, 1 node)", scaleout, limit)
    finally:
        scaleout.stop()
        drop_database(database)


if __name__ == "__main__":
    main()
