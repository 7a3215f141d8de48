"""Live update latency: a task's state change (its RunEvent row) -> the run page's websocket.

Starts the embedded default (`manage.py serve`: SQLite, no Redis) and the scale-out mode (web +
qcluster on Postgres + Redis, where workers nudge the sockets through channels-redis), runs a
chain of CHAIN no-op shell tasks in each, and listens on the run page's websocket from Debian's
Chromium (Playwright, signed in as a user would be). For every snapshot that arrives it takes
arrival time minus the time of the newest event it reflects, and prints p50 / p95 / max per mode.

Run it from the repository root: `python bench/live_update_latency.py` (about a minute).
Targets (DESIGN.md): p95 <= 300 ms embedded, <= 100 ms with Redis.
"""

import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e.conftest import PYTHON, Server, base_env, drop_database, free_port, make_workspace, start_scaleout  # noqa: E402

CHAIN = 30

LISTEN = """([runId, count]) => new Promise(resolve => {
  const seen = [];
  const socket = new WebSocket(`ws://${location.host}/ws/runs/${runId}/`);
  socket.onmessage = e => {
    const snapshot = JSON.parse(e.data);
    seen.push([Date.now(), snapshot.event_at, snapshot.finished]);
    if (snapshot.finished || seen.length >= count) { socket.close(); resolve(seen); }
  };
  setTimeout(() => resolve(seen), 120000);
})"""


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(server, browser):
    w = server.client()
    tasks = [{"task_key": f"t{i}", "shell_command_task": {"command": "true"},
              **({"depends_on": [{"task_key": f"t{i - 1}"}]} if i else {})} for i in range(CHAIN)]
    job_id = w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "latency", "tasks": tasks})["job_id"]
    page = browser.new_page()
    page.goto(server.url + "/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", server.env["LAKEFLOW_ADMIN_PASSWORD"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(server.url + "/")
    run_id = w.jobs.run_now(job_id=job_id).run_id
    seen = page.evaluate(LISTEN, [run_id, 10_000])
    page.close()
    # The first snapshot is the state at connect time, not a change.
    return [(arrived - datetime.fromisoformat(at).timestamp() * 1000) for arrived, at, _ in seen[1:] if at]


def report(name, lags):
    if not lags:
        print(f"{name}: no updates received")
        return
    print(f"{name}: {len(lags)} updates  p50={statistics.median(lags):.0f} ms  "
          f"p95={percentile(lags, 0.95):.0f} ms  max={max(lags):.0f} ms")


def main():
    tmp = Path(tempfile.mkdtemp(prefix="live-latency-"))
    port = free_port()
    env = base_env(tmp / "home", make_workspace(tmp), port)
    embedded = Server("serve", env, [("serve", [PYTHON, "manage.py", "serve", "--port", str(port), "--no-demo"])],
                      tmp / "workspace")
    scaleout, database = start_scaleout(Path(tempfile.mkdtemp(prefix="live-latency-scaleout-")), nodes=1)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            print(f"a chain of {CHAIN} no-op shell tasks; lag = snapshot arrival - newest event time")
            report("embedded (SQLite, no Redis, 0.1 s event look-ups)", measure(embedded, browser))
            report("scale-out (Postgres + Redis nudges)", measure(scaleout, browser))
            browser.close()
    finally:
        embedded.stop()
        scaleout.stop()
        drop_database(database)


if __name__ == "__main__":
    main()
