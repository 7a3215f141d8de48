"""Schedule fire lag and exactly-once firing with two cluster nodes on one Postgres database.

Starts the scale-out mode for real (a fresh Postgres database on 127.0.0.1:5432, Redis on
127.0.0.1:6379, a daphne web process and two `qcluster` nodes, each with its standby clock),
creates --jobs jobs with a Quartz schedule every --every seconds (`* * * * * ?`) through the official
databricks-sdk, lets them fire for --seconds, and optionally SIGKILLs the node whose clock
holds the lease half-way (--kill). Then it reads every run from the database and prints:

- fire lag (run created minus its schedule slot) p50 / p95 / max, in steady state and, with
  --kill, around the takeover;
- start lag (the run's first task started minus slot) p50 / p95: the run's own times are the
  clock step's "now"; a task's start is a worker's clock reading when it claimed the task, or
  for a condition task (--condition) the step that made it ready, which evaluates it;
- end lag (the run ended minus slot) and the runs' results; reacted lag: the first reaction to
  the run's end done minus slot, a time taken after the end's transaction committed (the
  others are the "now" of the step that wrote them);
- duplicate slots (more than one run for a job and slot) and missed slots (seconds between a
  job's first and last fired slot that made no run).

Run it from the repository root: `python bench/schedule_fire_lag.py --seconds 180 --kill`, or
with many jobs: `python bench/schedule_fire_lag.py --jobs 200 --every 5 --condition --seconds 180`,
or 10,000 firings with the clock's node killed half-way:
`python bench/schedule_fire_lag.py --firings 10000 --every 1 --seconds 120 --condition --kill`.
"""

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import postgres_admin_dsn, scale_out_keys  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(name, lags):
    if not lags:
        return f"{name}: no runs"
    return (f"{name}: n={len(lags)}  p50={statistics.median(lags) * 1000:.0f} ms  "
            f"p95={percentile(lags, 0.95) * 1000:.0f} ms  max={max(lags) * 1000:.0f} ms")


def start(label, argv, env, home):
    log = open(home / f"{label}.log", "ab")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def lease_holder_node(dsn, nodes):
    with psycopg.connect(dsn) as conn:
        (holder,) = conn.execute("SELECT holder FROM runs_clocklease WHERE expires_at > now()").fetchone()
    clock_pid = int(holder.split(":")[1])
    parent = int(Path(f"/proc/{clock_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return next(node for node in nodes if node.pid == parent)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=180, help="how long the schedules fire")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the clock's node half-way")
    parser.add_argument("--jobs", type=int, default=3, help="how many scheduled jobs")
    parser.add_argument("--every", type=int, default=1, choices=[1, 2, 3, 4, 5, 6, 10, 15, 20, 30],
                        help="seconds between a job's slots")
    parser.add_argument("--condition", action="store_true",
                        help="the task is a condition_task (no process), to load the clock, not the workers")
    parser.add_argument("--firings", type=int, default=0,
                        help="aim at this many schedule slots in all: sets --jobs to firings x every / seconds "
                             "(`--firings 10000 --every 1 --seconds 120 --condition --kill`)")
    args = parser.parse_args()
    if args.firings:
        args.jobs = -(-args.firings * args.every // args.seconds)

    dsn, user = postgres_admin_dsn()
    database = f"lakeflow_bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    home = Path(f"/tmp/{database}")
    (home / "workspace").mkdir(parents=True)
    (home / "workspace" / "noop.py").write_text("")
    port = 18000 + secrets.randbelow(2000)
    db_url = f"postgresql://{user}@127.0.0.1:5432/{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="lakeflow_site.settings", LAKEFLOW_HOME=str(home / "home"), DATABASE_URL=db_url,
               LAKEFLOW_WORKSPACE_ROOT=str(home / "workspace"), REDIS_URL="redis://127.0.0.1:6379/0",
               LAKEFLOW_CLUSTER_NAME=f"lakeflow-{database}", LAKEFLOW_ADMIN_PASSWORD="bench",
               **scale_out_keys())
    procs = []
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        procs.append(start("web", [PYTHON, "-m", "lakeflow_site.web", "--bind", "127.0.0.1", "--port", str(port),
                                   "lakeflow_site.asgi:application"], env, home))
        nodes = [start(f"qcluster-{i}", [PYTHON, "manage.py", "qcluster"], env, home) for i in (1, 2)]
        procs += nodes
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if requests.get(url + "/.well-known/databricks-config", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        token = subprocess.run([PYTHON, "manage.py", "createapitoken", "bench", "--superuser"], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]

        from databricks.sdk import WorkspaceClient
        from databricks.sdk.service import jobs

        w = WorkspaceClient(host=url, token=token)
        if args.condition:
            task = jobs.Task(task_key="t", condition_task=jobs.ConditionTask(
                op=jobs.ConditionTaskOp.EQUAL_TO, left="{{job.trigger.time.second}}", right="0"))
        else:
            task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="noop.py"))
        cron = "* * * * * ?" if args.every == 1 else f"0/{args.every} * * * * ?"
        schedule = jobs.CronSchedule(quartz_cron_expression=cron, timezone_id="UTC",
                                     pause_status=jobs.PauseStatus.UNPAUSED)
        job_ids = [w.jobs.create(name=f"every {args.every} s {i}", schedule=schedule, tasks=[task]).job_id
                   for i in range(args.jobs)]
        print(f"{args.jobs} jobs firing every {args.every} s for {args.seconds} s on two qcluster nodes "
              f"(Postgres + Redis){', killing the clock node half-way' if args.kill else ''} ...", flush=True)
        killed_at = None
        deadline = time.time() + args.seconds
        if args.kill:
            time.sleep(args.seconds / 2)
            victim = lease_holder_node(db_url, nodes)
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            killed_at = time.time()
            procs.remove(victim)
        time.sleep(max(0.0, deadline - time.time()))
        paused = jobs.CronSchedule(quartz_cron_expression=cron, timezone_id="UTC",
                                   pause_status=jobs.PauseStatus.PAUSED)
        for job_id in job_ids:
            w.jobs.update(job_id, new_settings=jobs.JobSettings(schedule=paused))

        with psycopg.connect(db_url) as conn:
            # A run's times are the clock step's "now"; its first task's claim is a worker's
            # own clock reading, so "task started - slot" also counts how long the step took.
            rows = conn.execute(
                "SELECT r.job_id, r.trigger_slot, r.created_at, MIN(t.started_at), r.ended_at, r.result_state, "
                # Written after the run's end committed (the times above are its step's "now"):
                "(SELECT MIN(x.done_at) FROM runs_runevent e JOIN runs_reaction x ON x.event_id = e.id "
                " WHERE e.run_id = r.id AND e.type = 'run.finished') "
                "FROM runs_run r "
                "LEFT JOIN runs_taskrun t ON t.run_id = r.id "
                "WHERE r.job_id = ANY(%s) GROUP BY r.id ORDER BY r.job_id, r.trigger_slot", (job_ids,)).fetchall()
        report(rows, killed_at, args.every, args.firings)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(rows, killed_at, every, firings=0):
    from collections import Counter, defaultdict
    from datetime import timedelta

    per_job = defaultdict(list)
    for job_id, slot, created, started, *_ in rows:
        per_job[job_id].append((slot, created, started))
    duplicates = sum(n - 1 for n in Counter((job_id, slot) for job_id, slot, *_ in rows).values() if n > 1)
    # Around the takeover: slots from the kill to 30 s after it.
    near_kill = lambda slot: killed_at is not None and killed_at - 1 <= slot.timestamp() <= killed_at + 30  # noqa: E731
    ends = [(ended - slot).total_seconds() for _, slot, _, _, ended, _, _ in rows if ended and not near_kill(slot)]
    reacted = [(done - slot).total_seconds() for _, slot, *_, done in rows if done and not near_kill(slot)]
    first_reacted = defaultdict(list)  # by slot: the first of a batch's runs reacted to, soon after its commit
    for _, slot, *_, done in rows:
        if done and not near_kill(slot):
            first_reacted[slot].append((done - slot).total_seconds())
    first_reacted = [min(lags) for lags in first_reacted.values()]
    results = Counter(result or "not ended" for *_, result, _ in rows)
    missed = Counter()
    for fired in per_job.values():
        seen = {slot for slot, *_ in fired}
        slots = sorted(seen)
        for step in range(int((slots[-1] - slots[0]).total_seconds()) // every + 1):
            slot = slots[0] + timedelta(seconds=step * every)
            if slot not in seen:
                missed["takeover" if near_kill(slot) else "steady"] += 1
    steady = [(created - slot).total_seconds() for slot, created, _ in sum(per_job.values(), []) if not near_kill(slot)]
    takeover = [(created - slot).total_seconds() for slot, created, _ in sum(per_job.values(), []) if near_kill(slot)]
    started = [(begun - slot).total_seconds() for slot, _, begun in sum(per_job.values(), []) if begun and not near_kill(slot)]
    print(f"runs: {len(rows)}{f' (aimed at {firings} slots)' if firings else ''}  duplicate slots: {duplicates}  "
          f"missed slots: {missed['steady']} in steady state"
          + (f", {missed['takeover']} while the lease moved to the other node" if killed_at else ""))
    print(summary("fire lag, steady state (created - slot)", steady))
    print(summary("start lag, steady state (first task started - slot)", started))
    print(summary("end lag, steady state (run ended - slot)", ends))
    print(summary("reacted lag, steady state (first reaction to the run's end done - slot: after its commit)", reacted))
    print(summary("  the same, of each slot's first run reacted to (by slot)", first_reacted))
    print("run results:", ", ".join(f"{result} {n}" for result, n in results.most_common()))
    if killed_at is not None:
        print(summary("fire lag, 30 s after the clock's node was killed", takeover))
        print("  (a killed clock's lease expires after 15 s; then the slots it missed fire late, oldest first:"
              " LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS)")
        lags = sorted((slot.timestamp() - killed_at, (created - slot).total_seconds())
                      for slot, created, _ in sum(per_job.values(), []))
        buckets = defaultdict(list)
        for since_kill, lag in lags:
            if -10 <= since_kill < 60:
                buckets[int((since_kill + 10) // 5) * 5 - 10].append(lag)
        print("  fire lag p95 of the slots of each 5 s from the kill: " + ", ".join(
            f"{start:+d} s: {statistics.quantiles(values, n=20)[-1] * 1000:.0f} ms" if len(values) > 1 else
            f"{start:+d} s: {values[0] * 1000:.0f} ms" for start, values in sorted(buckets.items())))
        late = [since_kill for since_kill, lag in lags if since_kill >= 0 and lag >= 1.0]
        print(f"  the last slot that fired 1 s late or more: kill + {max(late, default=0):.0f} s")


if __name__ == "__main__":
    main()
