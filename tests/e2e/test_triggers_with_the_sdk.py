"""Issue 4's "done when", through the official databricks-sdk against real processes: a cron
schedule fires every 2 s and stops when paused, a dropped file starts a run, a SQL task's write
fires the job watching that table, a continuous job keeps one run going, and two cluster nodes
on one Postgres database never fire a schedule slot twice, even when one of them dies."""

import secrets
import time

import psycopg
import pytest
from databricks.sdk.service import jobs

from tests.e2e.conftest import QCLUSTER, wait_until
from tests.e2e.test_core_with_the_sdk import WAIT, python_task, tasks_by_key

pytestmark = pytest.mark.e2e

UNPAUSED, PAUSED = jobs.PauseStatus.UNPAUSED, jobs.PauseStatus.PAUSED


def runs_of(w, job_id, **filters):
    return list(w.jobs.list_runs(job_id=job_id, **filters))


def raw_job(w, job_id):
    """jobs/get as JSON: trigger_state carries more than the SDK's TriggerStateProto keeps."""
    return w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})


def logs_of(w, run):
    (task,) = tasks_by_key(w.jobs.get_run(run.run_id)).values()
    return w.jobs.get_run_output(task.run_id).logs


def wait_for_end(w, run_id):
    return w.jobs.wait_get_run_job_terminated_or_skipped(run_id=run_id, timeout=WAIT)


def clock_looked_since(w, server, seconds):
    """Wait until the clock has demonstrably been at work for `seconds` from now: a witness job's
    file-arrival trigger (looked at every 2 s) was checked that long after this call. Before it,
    "nothing happened" could only mean the machine was too busy to try."""
    if not hasattr(server, "witness_job_id"):
        watched = server.workspace / f"witness-{secrets.token_hex(3)}"
        watched.mkdir()
        server.witness_job_id = w.jobs.create(name="clock witness", trigger=jobs.TriggerSettings(
            file_arrival=jobs.FileArrivalTriggerConfiguration(url=str(watched)), pause_status=UNPAUSED),
            tasks=[python_task(server, "t", "ok.py")]).job_id
    since_ms = time.time() * 1000  # the server is on this machine: one clock
    wait_until(lambda: raw_job(w, server.witness_job_id)["trigger_state"]["file_arrival"]["last_checked_time"]
               >= since_ms + seconds * 1000, timeout=120, what=f"the clock to look again {seconds}s on")


def test_a_two_second_schedule_runs_every_two_seconds_and_stops_when_paused(server):
    w = server.client()
    every_two_seconds = jobs.CronSchedule(quartz_cron_expression="0/2 * * * * ?", timezone_id="Europe/Berlin",
                                          pause_status=UNPAUSED)
    job = w.jobs.create(name="every 2 s", schedule=every_two_seconds,
                        tasks=[python_task(server, "t", "ok.py", "slot={{job.trigger.time.timestamp_ms}}")])
    fired = wait_until(lambda: len(runs_of(w, job.job_id)) >= 3 and runs_of(w, job.job_id), timeout=60,
                       what="three scheduled runs")
    assert {run.trigger for run in fired} == {jobs.TriggerType.PERIODIC}

    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(schedule=jobs.CronSchedule(
        quartz_cron_expression="0/2 * * * * ?", timezone_id="Europe/Berlin", pause_status=PAUSED)))
    assert w.jobs.get(job.job_id).trigger_state.pause_status == PAUSED
    before = {run.run_id for run in runs_of(w, job.job_id)}
    clock_looked_since(w, server, 5)  # two and a half periods: a schedule that still fired would show here
    assert {run.run_id for run in runs_of(w, job.job_id)} == before

    # Each run's trigger time is its own slot: an even second, 2 s apart or a multiple of it.
    slots = []
    for run in sorted(fired, key=lambda r: r.run_id)[:3]:
        wait_for_end(w, run.run_id)
        logs = logs_of(w, run)
        slots.append(int(logs.split("slot=")[1].split()[0]))
    assert all(slot % 2000 == 0 for slot in slots), slots
    assert len(set(slots)) == 3 and all((b - a) % 2000 == 0 and b > a for a, b in zip(slots, slots[1:])), slots


def test_a_file_dropped_into_a_watched_directory_starts_a_run_with_its_location(server, tmp_path):
    w = server.client()
    landing = tmp_path / "landing"
    (landing / "2026").mkdir(parents=True)
    (landing / "2026" / "already-here.csv").write_text("old\n")
    url = f"file://{landing}/"
    job = w.jobs.create(
        name="on arrival",
        trigger=jobs.TriggerSettings(pause_status=UNPAUSED, file_arrival=jobs.FileArrivalTriggerConfiguration(url=url)),
        tasks=[python_task(server, "load", "ok.py", "location={{job.trigger.file_arrival.location}}")],
    )
    # The first look records what is already there: those files never fire.
    wait_until(lambda: raw_job(w, job.job_id)["trigger_state"]["file_arrival"]["files_seen"] == 1,
               what="the trigger's first look at the directory")
    assert runs_of(w, job.job_id) == []

    (landing / "2026" / "11").mkdir()
    (landing / "2026" / "11" / "orders.csv").write_text("id\n1\n")
    (run,) = wait_until(lambda: runs_of(w, job.job_id), what="a file-arrival run")
    assert run.trigger == jobs.TriggerType.FILE_ARRIVAL
    assert wait_for_end(w, run.run_id).state.result_state == jobs.RunResultState.SUCCESS
    assert f"location={url}" in logs_of(w, run)
    assert raw_job(w, job.job_id)["trigger_state"]["file_arrival"]["files_seen"] == 2

    # A directory that disappears is shown on the trigger state; the job itself stays.
    for path in sorted(landing.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    landing.rmdir()
    state = wait_until(lambda: raw_job(w, job.job_id)["trigger_state"].get("last_error") and
                       raw_job(w, job.job_id)["trigger_state"], what="the missing directory on the trigger state")
    assert str(landing) in state["last_error"]
    w.jobs.delete(job.job_id)


def test_a_sql_task_writing_tables_fires_the_job_that_watches_them(server, tmp_path):
    w = server.client()
    duck_table, pg_table = f"e2e_orders_{secrets.token_hex(3)}", f"e2e_orders_{secrets.token_hex(3)}"
    watched = [f"default.main.{duck_table}", f"pg.public.{pg_table}"]
    watcher = w.jobs.create(
        name="on both tables",
        trigger=jobs.TriggerSettings(pause_status=UNPAUSED, table_update=jobs.TableUpdateTriggerConfiguration(
            table_names=watched, condition=jobs.Condition.ALL_UPDATED)),
        tasks=[python_task(server, "report", "ok.py", "updated={{job.trigger.table_update.updated_tables}}",
                           f"version={{{{job.trigger.table_update.{watched[1]}.version}}}}")],
    )
    duck_sql = tmp_path / "duck.sql"
    duck_sql.write_text(f"CREATE OR REPLACE TABLE {duck_table} AS SELECT range AS id FROM range(3);\n")
    # query_text (inline SQL) is this server's extension the SDK does not know: raw JSON.
    writer = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "writer", "tasks": [
        {"task_key": "duck", "sql_task": {"warehouse_id": "default", "file": {"path": str(duck_sql)}}},
        {"task_key": "pg", "depends_on": [{"task_key": "duck"}], "sql_task": {"warehouse_id": "pg", "query": {
            "query_text": f"CREATE TABLE {pg_table} (id int); INSERT INTO {pg_table} VALUES (1);"}}},
    ]})
    try:
        wrote = w.jobs.run_now(job_id=writer["job_id"]).result(timeout=WAIT)
        assert wrote.state.result_state == jobs.RunResultState.SUCCESS

        (run,) = wait_until(lambda: runs_of(w, watcher.job_id), what="the table-update run")
        assert run.trigger == jobs.TriggerType.TABLE
        assert wait_for_end(w, run.run_id).state.result_state == jobs.RunResultState.SUCCESS
        logs = logs_of(w, run)
        assert f'updated=["{watched[0]}","{watched[1]}"]' in logs
        assert "version=" in logs and "version={{" not in logs
        states = raw_job(w, watcher.job_id)["trigger_state"]["table"]["last_seen_table_states"]
        assert [s["table_name"] for s in states] == watched
        clock_looked_since(w, server, 3)  # both writes were consumed by that one run: no second run follows
        assert len(runs_of(w, watcher.job_id)) == 1
    finally:
        with psycopg.connect(server.env["LAKEFLOW_WAREHOUSES"].split("=", 1)[1], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {pg_table}")
        w.jobs.delete(watcher.job_id)


def test_a_continuous_job_keeps_exactly_one_run_going_until_paused(server):
    w = server.client()
    job = w.jobs.create(name="continuous", continuous=jobs.Continuous(pause_status=UNPAUSED),
                        tasks=[python_task(server, "t", "ok.py", "0.5")])
    most_active = 0

    def three_runs_ended():
        nonlocal most_active
        most_active = max(most_active, len(runs_of(w, job.job_id, active_only=True)))
        ended = runs_of(w, job.job_id, completed_only=True)
        return len(ended) >= 3 and ended

    ended = wait_until(three_runs_ended, timeout=90, interval=0.2, what="three continuous runs")
    assert most_active == 1
    assert {run.trigger for run in ended} == {jobs.TriggerType.CONTINUOUS}
    assert {run.state.result_state for run in ended} == {jobs.RunResultState.SUCCESS}

    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(continuous=jobs.Continuous(pause_status=PAUSED)))
    # Pausing stops new runs; the active one finishes (as in Lakeflow).
    wait_until(lambda: not runs_of(w, job.job_id, active_only=True), timeout=60, what="the last run to end")
    count = len(runs_of(w, job.job_id))
    clock_looked_since(w, server, 3)
    assert len(runs_of(w, job.job_id)) == count
    assert raw_job(w, job.job_id)["trigger_state"]["pause_status"] == "PAUSED"


def test_a_failing_continuous_job_backs_off_and_shows_it(server):
    w = server.client()
    job = w.jobs.create(name="continuous failing", continuous=jobs.Continuous(pause_status=UNPAUSED),
                        tasks=[python_task(server, "t", "fail.py")])
    state = wait_until(lambda: (raw_job(w, job.job_id)["trigger_state"]["continuous"]["consecutive_failures"] >= 1
                                and raw_job(w, job.job_id)["trigger_state"]["continuous"]), what="a failed run")
    assert state["is_backing_off"] is True
    assert state["next_attempt_ms"] > time.time() * 1000
    w.jobs.delete(job.job_id)


def scheduled_slots(server, job_id):
    """(run id, trigger slot) of the job's runs, read from the database itself."""
    with psycopg.connect(server.database_url) as conn:
        return conn.execute("SELECT id, trigger_slot FROM runs_run WHERE job_id = %s ORDER BY id", (job_id,)).fetchall()


def clock_holder_node(server):
    """The qcluster process whose clock holds the lease (the clock is its child process)."""
    with psycopg.connect(server.database_url) as conn:
        (holder,) = conn.execute("SELECT holder FROM runs_clocklease WHERE expires_at > now()").fetchone()
    clock_pid = int(holder.split(":")[1])
    parent = int(open(f"/proc/{clock_pid}/stat").read().rsplit(")", 1)[1].split()[1])
    (node,) = [proc for proc in server.procs if proc.pid == parent]
    return node


def test_two_cluster_nodes_never_fire_a_slot_twice_even_when_one_dies(two_node_server):
    server = two_node_server
    w = server.client()
    every_second = jobs.CronSchedule(quartz_cron_expression="* * * * * ?", timezone_id="UTC", pause_status=UNPAUSED)
    # A retry: the attempt running on the node that dies is failed as lost and runs again elsewhere.
    job = w.jobs.create(name="every second", schedule=every_second,
                        tasks=[python_task(server, "t", "ok.py", max_retries=1)])
    wait_until(lambda: len(scheduled_slots(server, job.job_id)) >= 5, timeout=60, what="five scheduled runs")

    server.kill(clock_holder_node(server))  # SIGKILL: its lease expires, the other node's clock takes over
    killed_at = len(scheduled_slots(server, job.job_id))
    wait_until(lambda: len(scheduled_slots(server, job.job_id)) >= killed_at + 5, timeout=90,
               what="runs after the surviving node took over")
    server.start("qcluster-3", QCLUSTER)  # and a restarted node joins again
    joined_at = len(scheduled_slots(server, job.job_id))
    wait_until(lambda: len(scheduled_slots(server, job.job_id)) >= joined_at + 3, timeout=90,
               what="runs after the third node joined")
    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(schedule=jobs.CronSchedule(
        quartz_cron_expression="* * * * * ?", timezone_id="UTC", pause_status=PAUSED)))

    rows = scheduled_slots(server, job.job_id)
    slots = [slot for _, slot in rows]
    assert None not in slots
    assert len(slots) == len(set(slots)), "a slot fired twice"
    assert slots == sorted(slots), "slots fired out of order"
    # The slots that came while the lease moved fired late, in order, after the takeover
    # (LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS, 600 s for this server): not one second is missing.
    gaps = [(b - a).total_seconds() for a, b in zip(slots, slots[1:])]
    assert set(gaps) == {1.0}, gaps
    for run in w.jobs.list_runs(job_id=job.job_id, completed_only=True):
        assert run.trigger == jobs.TriggerType.PERIODIC
        assert run.state.result_state == jobs.RunResultState.SUCCESS


def test_triggers_and_a_job_completion_trigger_round_trip_through_the_sdk(sqlite_server):
    from databricks.sdk.errors import InvalidParameterValue

    server, w = sqlite_server, sqlite_server.client()
    upstream = w.jobs.create(name="upstream", tasks=[python_task(server, "t", "ok.py")]).job_id
    waits = jobs.JobCompletionTriggerConfiguration(jobs=[jobs.JobCompletionTriggerConfigurationMonitoredJob(
        job_id=str(upstream), workspace_id="1")])
    listed = w.jobs.create(name="two triggers", tasks=[python_task(server, "t", "ok.py")], triggers=[
        jobs.TriggerConfiguration(schedule=jobs.CronTriggerConfiguration(quartz_cron_expression="0 0 6 * * ?",
                                                                         timezone_id="UTC"), pause_status=PAUSED),
        jobs.TriggerConfiguration(job_completion=waits)]).job_id
    legacy = w.jobs.create(name="after upstream", tasks=[python_task(server, "t", "ok.py")],
                           trigger=jobs.TriggerSettings(job_completion=waits)).job_id

    got = w.jobs.get(listed, include_trigger_state=True)
    assert [t.pause_status for t in got.settings.triggers] == [PAUSED, UNPAUSED]
    assert got.settings.triggers[1].job_completion.jobs[0].job_id == str(upstream)
    assert got.settings.triggers[0].schedule.quartz_cron_expression == "0 0 6 * * ?"
    assert got.trigger_state is None and len(got.trigger_details) == 2
    assert got.trigger_details[1].state.job_completion.monitored_job_states[0].has_seen_completion is False

    run = w.jobs.run_now(upstream).result(timeout=WAIT)
    downstream = wait_until(lambda: runs_of(w, legacy), timeout=60, what="the job-completion run")
    assert downstream[0].trigger == jobs.TriggerType.JOB_COMPLETION
    (completed,) = w.jobs.get_run(downstream[0].run_id).trigger_info.job_completion.completed_jobs
    assert (completed.job_id, completed.run_id, completed.workspace_id) == (str(upstream), str(run.run_id), "1")
    assert completed.termination_code == jobs.TerminationCodeCode.SUCCESS
    assert wait_until(lambda: runs_of(w, listed), timeout=60, what="the listed trigger's run")[0].trigger == \
        jobs.TriggerType.JOB_COMPLETION
    (seen,) = w.jobs.get(legacy).trigger_state.job_completion.monitored_job_states
    assert seen.last_seen_run_id == str(run.run_id) and seen.has_seen_completion is False  # it fired: start over
    history = w.jobs.get(listed).trigger_details[1].history
    assert history.last_triggered.run_id == runs_of(w, listed)[0].run_id

    with pytest.raises(InvalidParameterValue, match=r"trigger.job_completion.jobs\[0\].job_id: job 424242424 "
                                                     r"does not exist"):
        w.jobs.reset(legacy, new_settings=jobs.JobSettings(name="x", tasks=[python_task(server, "t", "ok.py")],
                     trigger=jobs.TriggerSettings(job_completion=jobs.JobCompletionTriggerConfiguration(jobs=[
                         jobs.JobCompletionTriggerConfigurationMonitoredJob(job_id="424242424", workspace_id="1")]))))
    for job_id in (legacy, listed, upstream):
        w.jobs.delete(job_id)
