"""Python-file tasks in a real task process: argv, exit status, errors, dbutils, orphan checks."""

import json
import os
import subprocess
import sys
import textwrap

from runs.executors.launch import RUNNER_PATH, prepare_attempt
from runs.executors.supervisor import read_attempt_result, read_log_tail, supervise


def run_script(tmp_path, source, parameters=(), **kwargs):
    """Run ``source`` as a spark_python_task; return (outcome, result, log text)."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    (workspace / "task.py").write_text(textwrap.dedent(source))
    task = {"task_key": "me", "spark_python_task": {"python_file": "task.py",
                                                     "parameters": list(parameters)}}
    spec = prepare_attempt(task, attempt_dir=tmp_path / "attempt", workspace_root=workspace,
                           **kwargs)
    log_path = tmp_path / "attempt" / "log.txt"
    outcome = supervise(spec, log_path=log_path, timeout_seconds=20)
    return outcome, read_attempt_result(spec, outcome), read_log_tail(log_path)[0]


def test_the_script_gets_its_parameters_as_argv_and_runs_as_main_in_its_directory(tmp_path):
    outcome, result, log = run_script(tmp_path, """
        import json, os, sys
        print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0],
                          "name": __name__, "file": __file__}))
    """, parameters=["--date", "2024-01-01", "two words"])
    script = str(tmp_path / "ws" / "task.py")
    seen = json.loads(log)
    assert seen == {"argv": [script, "--date", "2024-01-01", "two words"],
                    "cwd": str(tmp_path / "ws"), "path0": str(tmp_path / "ws"),
                    "name": "__main__", "file": script}
    assert outcome.exit_code == 0
    assert result.error is None


def test_the_supervisor_handshake_does_not_leak_into_the_scripts_environment(tmp_path):
    _, _, log = run_script(tmp_path, """
        import json, os
        print(json.dumps(sorted(k for k in os.environ if k.startswith("LAKEFLOW_"))))
    """)
    seen = json.loads(log)
    assert "LAKEFLOW_TASK_VALUES_PATH" in seen
    assert "LAKEFLOW_SUPERVISOR_PID" not in seen and "LAKEFLOW_PDEATHSIG_SET" not in seen


def test_the_runner_directory_is_not_on_the_scripts_path(tmp_path):
    _, _, log = run_script(tmp_path, """
        import sys
        print(sys.path)
    """)
    assert os.path.dirname(RUNNER_PATH) not in log


def test_an_exception_fails_with_its_error_and_a_trace_without_runner_frames(tmp_path):
    outcome, result, log = run_script(tmp_path, """
        def load():
            raise ValueError("boom")
        load()
    """)
    assert outcome.exit_code == 1
    assert result.error == "ValueError: boom"
    assert result.error_trace.startswith("Traceback (most recent call last):\n  File \"")
    assert 'task.py", line 3, in load' in result.error_trace
    assert "runner.py" not in result.error_trace
    assert result.error_trace in log


def test_a_custom_exception_is_named_as_python_names_it(tmp_path):
    _, result, _ = run_script(tmp_path, """
        class QualityError(Exception):
            pass
        raise QualityError("3 null ids")
    """)
    assert result.error == "QualityError: 3 null ids"


def test_a_syntax_error_is_reported_with_its_line(tmp_path):
    outcome, result, log = run_script(tmp_path, "x = (\n")
    assert outcome.exit_code == 1
    assert result.error.startswith("SyntaxError:")
    assert "task.py" in result.error_trace and "runner.py" not in result.error_trace


def test_sys_exit_with_a_non_zero_code_fails_with_that_code(tmp_path):
    outcome, result, _ = run_script(tmp_path, "import sys; sys.exit(3)")
    assert outcome.exit_code == 3
    assert result.error == "SystemExit: 3"


def test_sys_exit_with_a_message_fails_and_prints_the_message(tmp_path):
    outcome, result, log = run_script(tmp_path, "import sys; sys.exit('config missing')")
    assert outcome.exit_code == 1
    assert result.error == "SystemExit: config missing"
    assert "config missing" in log


def test_sys_exit_zero_succeeds(tmp_path):
    outcome, result, _ = run_script(tmp_path, "import sys; sys.exit(0)")
    assert outcome.succeeded
    assert result.error is None


def test_task_values_set_by_the_script_reach_the_worker(tmp_path):
    outcome, result, _ = run_script(tmp_path, """
        dbutils.jobs.taskValues.set("rows", 42)
        dbutils.jobs.taskValues.set("tables", ["a", "b"])
        dbutils.jobs.taskValues.set("rows", 43)
    """)
    assert outcome.succeeded
    assert result.task_values == {"rows": 43, "tables": ["a", "b"]}


def test_task_values_set_before_a_crash_survive(tmp_path):
    outcome, result, _ = run_script(tmp_path, """
        import os
        dbutils.jobs.taskValues.set("progress", "half")
        os._exit(7)
    """)
    assert outcome.exit_code == 7
    assert result.task_values == {"progress": "half"}
    assert result.error == "Task process exited with code 7"


def test_upstream_values_are_read_with_get_and_a_missing_one_names_task_and_key(tmp_path):
    outcome, result, log = run_script(tmp_path, """
        print(dbutils.jobs.taskValues.get("ingest", "rows"))
        print(dbutils.jobs.taskValues.get("ingest", "absent", default="dflt"))
        dbutils.jobs.taskValues.get("ingest", "absent")
    """, upstream_values={"ingest": {"rows": 1234}})
    assert log.startswith("1234\ndflt\n")
    assert result.error.startswith("ValueError: No task value 'absent' for task 'ingest'")


def test_a_task_value_over_48_kib_fails_the_set_call(tmp_path):
    _, result, _ = run_script(tmp_path, """
        dbutils.jobs.taskValues.set("ok", "x" * (48 * 1024 - 2))
        dbutils.jobs.taskValues.set("big", "x" * (48 * 1024 - 1))
    """)
    assert result.error == ("ValueError: Task value 'big' is 49153 bytes as JSON; "
                            "the limit is 49152 bytes (48 KiB)")
    assert list(result.task_values) == ["ok"]


def test_widgets_come_from_the_job_and_defaults_fill_the_gaps(tmp_path):
    outcome, result, log = run_script(tmp_path, """
        dbutils.widgets.text("date", "1970-01-01")
        dbutils.widgets.dropdown("env", "dev", ["dev", "prod"])
        print(dbutils.widgets.get("date"), dbutils.widgets.get("env"))
        print(sorted(dbutils.widgets.getAll().items()))
        dbutils.widgets.get("nope")
    """, widgets={"date": "2024-05-01"})
    assert log.startswith("2024-05-01 dev\n[('date', '2024-05-01'), ('env', 'dev')]\n")
    assert result.error == "dbutils.InputWidgetNotDefined: No input widget named 'nope' is defined"


def test_notebook_exit_succeeds_with_its_value_and_stops_the_script(tmp_path):
    outcome, result, log = run_script(tmp_path, """
        try:
            dbutils.notebook.exit("done: 3 rows")
        except Exception:
            print("swallowed")
        print("after exit")
    """)
    assert outcome.succeeded
    assert result.notebook_result == "done: 3 rows"
    assert log == ""


def test_a_successful_script_without_notebook_exit_has_no_notebook_result(tmp_path):
    outcome, result, _ = run_script(tmp_path, "print('hi')")
    assert outcome.succeeded
    assert result.notebook_result is None
    assert json.loads((tmp_path / "attempt" / "result.json").read_text()) == {
        "exit_code": 0, "notebook_result": None}


def test_the_runner_also_runs_as_a_plain_script(tmp_path):
    (tmp_path / "ws").mkdir()
    script = tmp_path / "ws" / "task.py"
    script.write_text("import sys; print(sys.argv[1:], sys.path[0]); raise KeyError('k')\n")
    spec = prepare_attempt({"spark_python_task": {"python_file": str(script),
                                                  "parameters": ["x"]}},
                           attempt_dir=tmp_path / "attempt", workspace_root=tmp_path / "ws")
    done = subprocess.run([sys.executable, RUNNER_PATH, spec.spec_path], cwd=spec.cwd,
                          capture_output=True, text=True, timeout=20)
    result = json.loads(open(spec.result_path).read())
    assert done.stdout == f"['x'] {script.parent}\n"
    assert done.returncode == 1
    assert result["error"] == "KeyError: 'k'"
    assert "runner.py" not in result["error_trace"]


def test_the_runner_refuses_to_start_when_its_supervisor_is_gone(tmp_path):
    script = tmp_path / "task.py"
    marker = tmp_path / "ran"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"kind": "python_file", "python_file": str(script),
                                     "argv": [str(script)]}))
    env = {**os.environ, "LAKEFLOW_SUPERVISOR_PID": "1"}  # not our parent: pytest is
    done = subprocess.run([sys.executable, RUNNER_PATH, str(spec_path)], env=env,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert "supervisor 1 is gone" in done.stderr
    assert not marker.exists()


def test_a_user_module_named_dbutils_is_not_shadowed(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "dbutils.py").write_text("POOL = 'user module'\n")
    outcome, _, log = run_script(tmp_path, """
        import dbutils as pool
        print(pool.POOL, type(dbutils).__name__)
    """)
    assert log == "user module DBUtils\n"


def test_what_a_script_declares_with_dbutils_lineage_reaches_the_worker(tmp_path):
    outcome, result, _ = run_script(tmp_path, """
        dbutils.lineage.record(reads=["default.main.orders", "/Volumes/main/raw/in"], writes="default.main.totals")
        dbutils.lineage.record(writes=["analytics.main.report"])
        try:
            dbutils.lineage.record(reads=[42])
        except TypeError as exc:
            print(exc)
    """)
    assert outcome.succeeded, result.error
    assert result.declared_lineage == [
        {"reads": ["default.main.orders", "/Volumes/main/raw/in"], "writes": ["default.main.totals"]},
        {"reads": [], "writes": ["analytics.main.report"]}]


def test_databricks_sdk_runtime_gives_this_dbutils_and_a_spark_that_says_what_to_use(tmp_path):
    outcome, result, log = run_script(tmp_path, """
        from databricks.sdk.runtime import dbutils as runtime_dbutils, spark
        import databricks.sdk.runtime as runtime
        print(runtime_dbutils is dbutils, runtime.dbutils is dbutils)
        print(runtime_dbutils.widgets.get("day"))
        try:
            spark.sql("select 1")
        except Exception as exc:
            print(type(exc).__name__, exc)
        import builtins
        print("no builtin spark:", not hasattr(builtins, "spark"))  # code that tests for one builds its own
    """, widgets={"day": "mon"})
    assert outcome.succeeded, result.error
    lines = log.splitlines()
    assert lines[:2] == ["True True", "mon"]
    assert lines[2].startswith("SparkUnavailable spark is not available on this server") and "sql_task" in lines[2]
    assert lines[3] == "no builtin spark: True"

