"""What a task consumed, end to end: a real `serve` and a scale-out cluster (Postgres, Redis),
their workers' fork servers, the official SDK.

A task that burns 1 CPU-second (CPU time, measured by the task itself with time.process_time, so
a busy machine stretches its wall time, not its figure) while holding 200 MB (every page
touched) must report about that: CPU within 20% of 1.0 s, and a peak within 20% of 200 MB above
a no-op task's peak in the same run (the difference takes out what every task process holds
anyway: the interpreter and the runner it was forked with).
"""

from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

pytestmark = pytest.mark.e2e

MB = 10**6

HEAVY = """
import time
block = bytearray(200 * 10**6)
for i in range(0, len(block), 4096):
    block[i] = 1
while time.process_time() < 1.0:
    pass
"""


def test_a_task_that_burns_a_cpu_second_holding_200_mb_reports_about_that(server):
    # On both modes (the session's servers, shared with the other end-to-end tests): ~2 s each.
    (server.workspace / "usage_heavy.py").write_text(HEAVY)
    (server.workspace / "usage_noop.py").write_text("")
    w = server.client()
    job = w.jobs.create(name="usage", tasks=[
        jobs.Task(task_key="noop", spark_python_task=jobs.SparkPythonTask(python_file=server.script("usage_noop.py"))),
        jobs.Task(task_key="heavy", spark_python_task=jobs.SparkPythonTask(python_file=server.script("usage_heavy.py"))),
    ])
    finished = w.jobs.run_now(job_id=job.job_id).result(timeout=timedelta(minutes=3))
    assert finished.state.result_state == jobs.RunResultState.SUCCESS

    # The SDK keeps the durations; our usage extension is read from the raw JSON.
    parsed = {task["task_key"]: task for task in w.jobs.get_run(finished.run_id).as_dict()["tasks"]}
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get", query={"run_id": finished.run_id})
    usage = {task["task_key"]: task["usage"] for task in raw["tasks"]}

    heavy, noop = usage["heavy"], usage["noop"]
    assert 0.8 <= heavy["cpu_seconds"] <= 1.2, heavy
    assert 160 * MB <= heavy["peak_memory_bytes"] - noop["peak_memory_bytes"] <= 240 * MB, (heavy, noop)
    assert heavy["cost"] > noop["cost"] > 0 and heavy["currency"] == "USD"
    assert raw["usage"]["cpu_seconds"] == pytest.approx(heavy["cpu_seconds"] + noop["cpu_seconds"])
    assert raw["usage"]["cost"] == pytest.approx(heavy["cost"] + noop["cost"])

    task = parsed["heavy"]
    assert task["execution_duration"] >= 1000  # a CPU-second takes at least a second of wall time
    assert task["queue_duration"] >= 0 and task["cleanup_duration"] >= 0
    assert task["run_duration"] == task["setup_duration"] + task["execution_duration"] + task["cleanup_duration"]
