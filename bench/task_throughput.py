"""Hop latency, fan-out throughput, the load curve and a 10,000-iteration for-each of no-op Python
tasks, on the embedded default and on Postgres + Redis, next to the physical limit measured in the
same run.

- hop latency: a chain of CHAIN no-op spark_python_tasks; (run end - first task start) / hops,
  i.e. upstream ends -> downstream starts, including each task's process start.
- fan-out: FANOUT independent no-op spark_python_tasks in one job; tasks per second from the
  first start to the last end.
- load curve: the hop latency of the chain while a fan-out of 0, 250 and 500 no-op tasks runs in
  another job (started just before the chain); with how long the chain's first task waited and
  the share of the chain's span the fan-out was still running (a chain queued behind the whole
  fan-out shows a long wait and 0 %: its hops were not measured under load).
- for-each: one for_each_task over ITERATIONS inputs of a no-op Python task (concurrency
  --concurrency): iterations per second from the first iteration's start to the last one's end,
  and the server time of the run page (GET /jobs/<job>/runs/<run>/, median of several) and of
  runs/get (the job run, and the for-each task run's first page of iterations) while it runs and
  after it ended, and the SDK's get_run of the for-each task run (every page of its iterations).
  The goal (issue 20): the run page <= 300 ms at 10,000 iterations.
- the limit: the median start of a bare `python -c pass`, as a task process would be at least
  that if each started a fresh interpreter (ours are forked from a warm process instead).

Each hop/fan-out figure is the median of REPEATS runs on one server, with their spread.

Run it from the repository root: `python bench/task_throughput.py [--embedded-only]
[--only hop,fanout,curve,foreach] [--iterations 10000] [--concurrency 8]`.
Targets (DESIGN.md, issue 20): <= 15 ms per hop, >= 100 tasks/s, run page <= 300 ms.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import drop_database, start_scaleout, start_serve  # noqa: E402

CHAIN = 50
FANOUT = 500
LOADS = (0, 250, 500)
REPEATS = 3
PARTS = ("hop", "fanout", "curve", "foreach")
PAGE_SAMPLES = 7  # the run page's median is over this many GETs


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


def create(w, name, tasks):
    return w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": name, "tasks": tasks})["job_id"]


def finished_run(w, job_id):
    run = w.jobs.run_now(job_id=job_id).result(timeout=timedelta(minutes=30))
    assert run.state.result_state.value == "SUCCESS", run.state
    return run


def chain_job(w):
    return create(w, "chain", [noop(f"t{i}", f"t{i - 1}" if i else None) for i in range(CHAIN)])


def fanout_job(w, size):
    return create(w, f"fan-out {size}", [noop(f"t{i}") for i in range(size)])


def chain_span(run):
    """(first task start, last task end) in ms."""
    return min(t.start_time for t in run.tasks), max(t.end_time for t in run.tasks)


def hop_ms(w, job_id=None):
    first, last = chain_span(finished_run(w, job_id or chain_job(w)))
    return (last - first) / (CHAIN - 1)


def fanout_per_second(w, job_id=None):
    run = finished_run(w, job_id or fanout_job(w, FANOUT))
    span = (max(t.end_time for t in run.tasks) - min(t.start_time for t in run.tasks)) / 1000
    return len(run.tasks) / span


def spread(values, unit, fmt="{:.0f}"):
    return (f"{fmt.format(statistics.median(values))} {unit} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))} over {len(values)})")


def loaded_hop(w, chain_id, fanout_id):
    """One chain's hop while the fan-out job runs; (hop ms, share of the chain's span under load)."""
    load = w.jobs.run_now(job_id=fanout_id) if fanout_id else None
    if load is not None:  # the load is running (its first tasks started) before the chain starts
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": load.run_id})
            if any(t.get("start_time") for t in got.get("tasks", [])):
                break
            time.sleep(0.05)
    chain = finished_run(w, chain_id)
    first, last = chain_span(chain)
    waited = first - chain.start_time  # the chain's run created -> its first task started
    if load is None:
        return (last - first) / (CHAIN - 1), 1.0, waited
    loaded = load.result(timeout=timedelta(minutes=30))
    assert loaded.state.result_state.value == "SUCCESS", loaded.state
    load_end = max(t.end_time for t in loaded.tasks)
    return (last - first) / (CHAIN - 1), max(0.0, min(1.0, (load_end - first) / max(1, last - first))), waited


def curve(name, w):
    chain_id = chain_job(w)
    parts = []
    for size in LOADS:
        fanout_id = fanout_job(w, size) if size else None
        measured = [loaded_hop(w, chain_id, fanout_id) for _ in range(REPEATS)]
        hops = [hop for hop, _, _ in measured]
        covered = statistics.median(share for _, share, _ in measured)
        waited = statistics.median(wait for _, _, wait in measured)
        parts.append(f"load {size}: hop {spread(hops, 'ms')}, first task waited {waited:.0f} ms, "
                     f"chain under load {covered:.0%}")
    print(f"{name}: load curve (50-task chain while a fan-out runs in another job): " + "; ".join(parts), flush=True)


class Pages:
    """Signed-in GETs of the server's HTML pages, timed (client side, on the loopback)."""

    def __init__(self, server):
        self.url = server.url
        self.session = requests.Session()
        form = self.session.get(server.url + "/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        done = self.session.post(server.url + "/login/", timeout=30, headers={"Referer": server.url + "/login/"},
                                 data={"csrfmiddlewaretoken": token, "username": "admin",
                                       "password": server.env["LAKEFLOW_ADMIN_PASSWORD"]})
        assert done.ok and "/login/" not in done.url, (done.status_code, done.url)
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {server.token}"

    def timed(self, session, path, **params):
        started = time.perf_counter()
        got = session.get(self.url + path, params=params, timeout=120)
        spent = (time.perf_counter() - started) * 1000
        assert got.ok, (path, got.status_code, got.text[:300])
        return spent, len(got.content)

    def median(self, session, path, samples=PAGE_SAMPLES, **params):
        timed = [self.timed(session, path, **params) for _ in range(samples)]
        return statistics.median(t for t, _ in timed), max(size for _, size in timed)


def for_each_figures(name, server, w, iterations, concurrency):
    inputs = json.dumps(list(range(iterations)))
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": f"for-each {iterations}", "tasks": [
        {"task_key": "loop", "for_each_task": {"inputs": inputs, "concurrency": concurrency,
                                               "task": noop("item")}}]})["job_id"]
    pages = Pages(server)
    started = time.monotonic()
    run_id = w.jobs.run_now(job_id=job_id).run_id
    page = f"/jobs/{job_id}/runs/{run_id}/"
    during, during_api, done = [], [], 0
    while True:
        got = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": run_id})
        if got["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            break
        loop = (got.get("tasks") or [{}])[0]
        done = ((loop.get("for_each_task") or {}).get("stats") or {}).get("task_run_stats", {}).get(
            "completed_iterations", 0)
        if done >= iterations // 10:  # a tenth done: pages at a size worth measuring, one sample a second
            during.append(pages.timed(pages.session, page)[0])
            during_api.append(pages.timed(pages.api, "/api/2.2/jobs/runs/get", run_id=run_id)[0])
        time.sleep(1)
        if time.monotonic() - started > 3600:
            raise AssertionError(f"the for-each ran over an hour ({done} of {iterations} iterations)")
    assert got["state"]["result_state"] == "SUCCESS", got["state"]
    loop = got["tasks"][0]
    stats = loop["for_each_task"]["stats"]["task_run_stats"]
    assert stats["succeeded_iterations"] == iterations, stats
    # runs/get pages a for-each's iterations (100 a page): the SDK's get_run reads every page.
    read_started = time.perf_counter()
    rows = w.jobs.get_run(loop["run_id"])
    sdk_read_ms = (time.perf_counter() - read_started) * 1000
    spans = [(i.start_time, i.end_time) for i in rows.iterations or []]
    assert len(spans) == iterations, (len(spans), iterations)
    rate = iterations / ((max(e for _, e in spans) - min(s for s, _ in spans)) / 1000)
    how = "first iteration start -> last end"
    after, size = pages.median(pages.session, page)
    panel, _ = pages.median(pages.session, f"/task-runs/{loop['run_id']}/", fragment="1")
    api_after, _ = pages.median(pages.api, "/api/2.2/jobs/runs/get", run_id=run_id)
    api_task, api_task_size = pages.median(pages.api, "/api/2.2/jobs/runs/get", samples=3, run_id=loop["run_id"])
    running = (f"while running {spread(during, 'ms')}, runs/get {spread(during_api, 'ms')}"
               if during else "while running: not sampled (ended too soon)")
    print(f"{name}: for-each {iterations} no-op iterations, concurrency {concurrency}: {rate:.1f} iterations/s "
          f"({how}); run page {running}; after it ended: run page {after:.0f} ms ({size // 1024} KB, "
          f"goal <= 300 ms), its for-each task panel {panel:.0f} ms, runs/get of the run {api_after:.0f} ms, "
          f"runs/get of the for-each task run {api_task:.0f} ms ({api_task_size // 1024} KB, one page), the SDK's "
          f"get_run of it, all {len(spans)} iterations, {sdk_read_ms:.0f} ms", flush=True)


def measure(name, server, limit_ms, parts, iterations, concurrency):
    (server.workspace / "noop.py").write_text("")
    w = server.client()
    # The machine is shared and noisy: the median of a few runs, and their spread.
    if "hop" in parts:
        hops = [hop_ms(w) for _ in range(REPEATS)]
        print(f"{name}: hop {spread(hops, 'ms')} chains; {statistics.median(hops) / limit_ms:.1f}x a bare "
              f"interpreter's start", flush=True)
    if "fanout" in parts:
        rates = [fanout_per_second(w) for _ in range(REPEATS)]
        print(f"{name}: fan-out {spread(rates, 'tasks/s')} runs of {FANOUT} tasks", flush=True)
    if "curve" in parts:
        curve(name, w)
    if "foreach" in parts:
        for_each_figures(name, server, w, iterations, concurrency)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedded-only", action="store_true")
    parser.add_argument("--scaleout-only", action="store_true")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--iterations", type=int, default=10_000, help="the for-each's inputs")
    parser.add_argument("--concurrency", type=int, default=8, help="the for-each's concurrency")
    args = parser.parse_args()
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown parts {', '.join(sorted(unknown))} (of {', '.join(PARTS)})")
    limit = bare_interpreter_ms()
    print(f"bare `python -c pass`: median {limit:.1f} ms (the limit per task process)", flush=True)
    if not args.scaleout_only:
        embedded = start_serve(Path(tempfile.mkdtemp(prefix="throughput-")), "serve", "--no-demo")
        try:
            measure("embedded (SQLite, ORM broker)", embedded, limit, parts, args.iterations, args.concurrency)
        finally:
            embedded.stop()
    if args.embedded_only:
        return
    scaleout, database = start_scaleout(Path(tempfile.mkdtemp(prefix="throughput-scaleout-")), nodes=1)
    try:
        measure("scale-out (Postgres + Redis, 1 node)", scaleout, limit, parts, args.iterations, args.concurrency)
    finally:
        scaleout.stop()
        drop_database(database)


if __name__ == "__main__":
    main()
