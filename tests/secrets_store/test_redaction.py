"""Secret values are [REDACTED] wherever the server shows what a task attempt printed: the log
in runs/get-output, runs/export, the run page's task panel and live log, the root-cause view, an
executed notebook's outputs, its exit value and task values (errors are redacted as they are
stored: test_real_tasks.py). A value this server cannot decrypt withholds all of it. And no server
module reads a log another way."""

import json
import re
from pathlib import Path

import nbformat
from cryptography.fernet import Fernet

from runs.attempt_credentials import secrets_credential
from runs.dispatch import finish_attempt
from runs.engine.endings import attempt_ended
from runs.models import Run, TaskRun
from runs.rootcause import explain
from runs.executors.supervisor import AttemptResult
from runs.task_logs import read_task_log_from, read_task_log_tail, withheld, without_secret_values
from tests.api.conftest import create_job
from vault.models import SecretFetch
from vault.redaction import context_bytes, redact_bytes, redact_text, unsafe_tail

SECRET = "s3cr3t-Pa55word-é"
ROOT = Path(__file__).resolve().parents[2]


# --- the pure part --------------------------------------------------------------------------

def test_values_are_replaced_whole_longest_first():
    values = [b"abc", b"abcdef", b""]
    assert redact_bytes(b"x abcdef y abc z", values) == b"x [REDACTED] y [REDACTED] z"
    assert redact_text("x abcdef y", values) == "x [REDACTED] y"
    assert redact_bytes(b"nothing here", []) == b"nothing here"


def test_a_value_cut_by_the_start_of_a_tail_is_still_redacted():
    data = b"...abcdef tail"
    assert redact_bytes(data, [b"abcdef"], keep_from=5) == b"[REDACTED] tail"
    assert redact_bytes(data, [b"abcdef"], keep_from=9) == b" tail"  # ended before the tail
    assert context_bytes([b"abcdef", b"xy"]) == 5


def test_a_live_reader_holds_back_what_could_begin_a_value():
    assert unsafe_tail(b"hello abcd", [b"abcdef"]) == 4
    assert unsafe_tail(b"hello abcdef", [b"abcdef"]) == 0  # whole: redacted in this chunk
    assert unsafe_tail(b"hello abab", [b"ababx"]) == 4
    assert unsafe_tail(b"hello", [b"xyz"]) == 0


def test_a_value_that_is_not_utf8_is_not_matched_as_replacement_characters():
    binary = b"\xff\xfe"
    assert redact_text("bad bytes: \ufffd\ufffd", [binary]) == "bad bytes: \ufffd\ufffd"
    assert redact_bytes(b"raw \xff\xfe end", [binary]) == b"raw [REDACTED] end"  # a log holds the bytes


# --- the server's views ---------------------------------------------------------------------

def attempt_that_fetched(api, client, tmp_path, log_text, **fields):
    """A run's attempt that read SECRET with its credential and printed `log_text`."""
    api.client.post("/api/2.0/secrets/scopes/create", {"scope": "s"}, content_type="application/json",
                    headers=api.headers())
    api.client.post("/api/2.0/secrets/put", {"scope": "s", "key": "k", "string_value": SECRET},
                    content_type="application/json", headers=api.headers())
    run_id = api.post_ok("jobs/run-now", {"job_id": create_job(api)})["run_id"]
    attempt = TaskRun.objects.get(run_id=run_id)
    fetched = client.get("/api/2.0/secrets/get", {"scope": "s", "key": "k"},
                         headers={"Authorization": f"Bearer {secrets_credential(attempt.id)}"})
    assert fetched.status_code == 200
    log = tmp_path / "output.log"
    log.write_text(log_text, encoding="utf-8")
    TaskRun.objects.filter(id=attempt.id).update(log_path=str(log), **fields)
    return TaskRun.objects.get(id=attempt.id)


def test_get_output_redacts_the_log(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, f"connecting with {SECRET}\ndone\n")
    output = api.get_ok("jobs/runs/get-output", run_id=attempt.id)
    assert output["logs"] == "connecting with [REDACTED]\ndone\n"
    assert SECRET not in json.dumps(output, ensure_ascii=False)


def test_an_attempt_that_fetched_nothing_shows_its_log_as_written(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, "hello\n")
    other = TaskRun.objects.create(run=attempt.run, task_key="other", log_path=attempt.log_path)
    Path(attempt.log_path).write_text(f"the value {SECRET} printed by another attempt\n", encoding="utf-8")
    assert read_task_log_tail(other).text == f"the value {SECRET} printed by another attempt\n"


def test_export_redacts_the_logs(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, f"value={SECRET}\n")
    exported = api.get_ok("jobs/runs/export", run_id=attempt.run_id)
    page = exported["views"][0]["content"]
    assert "value=[REDACTED]" in page and SECRET not in page and "s3cr3t" not in page


def test_the_run_page_panel_and_live_log_redact(api, client, tmp_path, held_broker, alice):
    attempt = attempt_that_fetched(api, client, tmp_path, f"a {SECRET} b\n")
    client.force_login(alice)
    panel = client.get(f"/task-runs/{attempt.id}/?fragment=1").content.decode()
    assert "a [REDACTED] b" in panel and "s3cr3t" not in panel
    live = client.get(f"/task-runs/{attempt.id}/log/", {"offset": 0}).json()
    assert live["text"] == "a [REDACTED] b\n"


def test_a_live_chunk_never_ends_inside_a_value(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, f"start {SECRET[:6]}")  # the task is mid-print
    text, offset = read_task_log_from(attempt, 0, 1024, finished=False)
    assert text == "start " and offset == len("start ")
    with open(attempt.log_path, "a", encoding="utf-8") as f:
        f.write(f"{SECRET[6:]} end\n")
    rest, end = read_task_log_from(attempt, offset, 1024, finished=False)
    assert rest == "[REDACTED] end\n"
    # Chunks smaller than the value: each still ends where no value could be cut.
    shown, offset = "", 0
    for _ in range(50):
        text, offset = read_task_log_from(attempt, offset, 4, finished=True)
        shown += text
    assert shown == "start [REDACTED] end\n"


def test_a_tail_that_starts_inside_a_value_redacts_it(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, f"{SECRET} and then some more\n")
    size = len(Path(attempt.log_path).read_bytes())
    tail = read_task_log_tail(attempt, max_bytes=size - 3)  # starts 3 bytes into the value
    assert tail.truncated and tail.text == "[REDACTED] and then some more\n"
    running = read_task_log_tail(attempt, max_bytes=size, finished=False)
    assert running.end == size


def test_the_root_cause_view_redacts_the_last_log_lines(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, f"line one\nfailed with {SECRET}\n")
    finish_attempt(attempt.id, attempt_ended("FAILED", "RuntimeError: no connection"))
    origin = explain(Run.objects.get(id=attempt.run_id))["origins"][0]
    assert "failed with [REDACTED]" in origin["last_log_lines"]
    assert SECRET not in json.dumps(origin, default=str, ensure_ascii=False)


def test_an_executed_notebooks_outputs_are_redacted(api, client, tmp_path, held_broker, alice):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print(dbutils.secrets.get('s', 'k'))",
        outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"{SECRET}\n"),
                 nbformat.v4.new_output("execute_result", data={"text/plain": f"'{SECRET}'"}, execution_count=1)])])
    executed = tmp_path / "executed.ipynb"
    executed.write_text(nbformat.writes(notebook), encoding="utf-8")
    attempt = attempt_that_fetched(api, client, tmp_path, "", executed_notebook=str(executed))
    client.force_login(alice)
    page = client.get(f"/task-runs/{attempt.id}/output/").content.decode()
    assert "[REDACTED]" in page and "s3cr3t" not in page
    views = api.get_ok("jobs/runs/export", run_id=attempt.run_id, views_to_export="ALL")["views"]
    assert all("s3cr3t" not in view["content"] for view in views)


def test_no_server_module_reads_a_task_log_but_through_runs_task_logs():
    """A new page that opened log_path itself would show secret values: keep them all in one place."""
    readers = []
    for path in [*ROOT.glob("runs/*.py"), *ROOT.glob("api/*.py"), *ROOT.glob("jobs/*.py"), *ROOT.glob("lineage/*.py")]:
        reads = [line for line in path.read_text().splitlines()
                 if re.search(r"read_log_tail|open\([^)]*log_path|open_task_file\([^)]*log", line)
                 and "append_for_server" not in line]  # the worker appends to it: writing shows nothing
        if reads and path.name != "task_logs.py":
            readers.append(path.relative_to(ROOT).as_posix())
    assert readers == []


def test_the_exit_value_and_task_values_are_redacted_where_shown(api, client, tmp_path, held_broker, alice):
    attempt = attempt_that_fetched(api, client, tmp_path, "", task_type="notebook_task",
                                   notebook_result={"result": f"token={SECRET}", "truncated": False},
                                   task_values={"conn": {"password": SECRET}, "rows": 3})
    output = api.get_ok("jobs/runs/get-output", run_id=attempt.id)
    assert output["notebook_output"] == {"result": "token=[REDACTED]", "truncated": False}
    client.force_login(alice)
    panel = client.get(f"/task-runs/{attempt.id}/?fragment=1").content.decode()
    assert "token=[REDACTED]" in panel and "[REDACTED]" in panel.split("Task values")[1]
    assert "s3cr3t" not in panel
    assert TaskRun.objects.get(id=attempt.id).task_values["conn"]["password"] == SECRET  # passed on as set


def recorded_under_another_key(attempt):
    """The attempt's fetch as a process with another LAKEFLOW_SECRETS_KEY recorded it."""
    other_key = Fernet(Fernet.generate_key())
    SecretFetch.objects.filter(attempt_id=attempt.id).update(encrypted_value=other_key.encrypt(SECRET.encode()))


def test_output_that_may_hold_a_value_this_server_cannot_decrypt_is_withheld(
        api, client, tmp_path, held_broker, alice):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print(value)", outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"{SECRET}\n")])])
    executed = tmp_path / "executed.ipynb"
    executed.write_text(nbformat.writes(notebook), encoding="utf-8")
    attempt = attempt_that_fetched(api, client, tmp_path, f"printed {SECRET}\n", task_type="notebook_task",
                                   executed_notebook=str(executed), task_values={"v": SECRET},
                                   notebook_result={"result": SECRET, "truncated": False})
    recorded_under_another_key(attempt)

    output = api.get_ok("jobs/runs/get-output", run_id=attempt.id)
    assert output["logs"] == withheld("log") == (
        "[log withheld: it may hold secret values this server cannot decrypt "
        "(LAKEFLOW_SECRETS_KEY differs from the key that stored them)]")
    assert output["notebook_output"]["result"] == withheld("value")
    client.force_login(alice)
    panel = client.get(f"/task-runs/{attempt.id}/?fragment=1").content.decode()
    assert withheld("log") in panel
    assert client.get(f"/task-runs/{attempt.id}/log/", {"offset": 0}).json()["text"] == ""
    notebook_page = client.get(f"/task-runs/{attempt.id}/output/").content.decode()
    assert withheld("notebook output") in notebook_page
    views = api.get_ok("jobs/runs/export", run_id=attempt.run_id, views_to_export="ALL")["views"]
    assert any(withheld("log") in view["content"] for view in views)
    assert any(withheld("notebook output") in view["content"] for view in views)
    finish_attempt(attempt.id, attempt_ended("FAILED", "RuntimeError: no connection"))
    origin = explain(Run.objects.get(id=attempt.run_id))["origins"][0]
    assert withheld("log") in origin["last_log_lines"]
    for shown in [json.dumps(output, ensure_ascii=False), panel, notebook_page, json.dumps(views, ensure_ascii=False),
                  json.dumps(origin, default=str, ensure_ascii=False)]:
        assert "s3cr3t" not in shown


def test_a_worker_that_cannot_decrypt_a_fetched_value_stores_no_error_text(api, client, tmp_path, held_broker):
    attempt = attempt_that_fetched(api, client, tmp_path, "")
    failed = AttemptResult(error=f"ValueError: cannot connect with {SECRET}", error_trace=f"Traceback...{SECRET}")
    assert without_secret_values(failed, attempt.id).error == "ValueError: cannot connect with [REDACTED]"
    recorded_under_another_key(attempt)
    stored = without_secret_values(failed, attempt.id)
    assert stored.error == stored.error_trace == withheld("error message")


def dbt_archive_beside(log_path, members):
    import io
    import tarfile

    from runs.executors.dbt import artifacts_path

    with tarfile.open(artifacts_path(str(log_path)), "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_dbt_artifacts_are_redacted_and_withheld_like_the_log(api, client, tmp_path, held_broker):
    import io
    import tarfile

    attempt = attempt_that_fetched(api, client, tmp_path, "dbt ran\n", task_type="dbt_task")
    dbt_archive_beside(attempt.log_path, {"dbt.log": f"profile password {SECRET}\n", "manifest.json": "{}"})

    download = api.get("jobs/runs/dbt-artifacts", run_id=attempt.id)
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(b"".join(download.streaming_content)), mode="r:gz") as archive:
        members = {member.name: archive.extractfile(member).read() for member in archive}
    assert members == {"dbt.log": b"profile password [REDACTED]\n", "manifest.json": b"{}"}

    recorded_under_another_key(attempt)
    assert "dbt_output" not in api.get_ok("jobs/runs/get-output", run_id=attempt.id)
    refused = api.get("jobs/runs/dbt-artifacts", run_id=attempt.id)
    assert refused.status_code == 403 and refused.json()["message"] == withheld("dbt artifacts")
