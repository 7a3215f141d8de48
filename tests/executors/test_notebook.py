"""Notebook tasks in a real task process with a real IPython kernel (no mocks).

Each run starts a kernel (~1-2 s), so runs are shared by module-scoped fixtures where several
tests look at the same attempt.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import nbformat.v4 as v4
import pytest

from runs.executors import dbutils as dbutils_module
from runs.executors import notebook
from runs import notebook_html
from runs.executors.errors import LaunchError
from runs.executors.files import TaskFiles
from runs.executors.launch import prepare_attempt
from runs.executors.supervisor import read_attempt_result, read_log_tail, supervise

NOTEBOOKS = Path(__file__).resolve().with_name("notebooks")
ANSI_ESCAPE = "\x1b["


class Attempt:
    """One notebook_task attempt run to its end, and what it left behind."""

    def __init__(self, workspace: Path, notebook_task: dict, *, widgets=None, upstream_values=None,
                 should_cancel=lambda: False):
        self.attempt_dir = workspace / "attempt"
        self.spec = prepare_attempt(
            {"task_key": "nb", "notebook_task": notebook_task},
            attempt_dir=self.attempt_dir, workspace_root=workspace,
            widgets=widgets, upstream_values=upstream_values,
        )
        self.log_path = self.attempt_dir / "log.txt"
        self.outcome = supervise(self.spec, log_path=self.log_path, timeout_seconds=60,
                                 should_cancel=should_cancel, check_every=0.1)
        self.result = read_attempt_result(self.spec, self.outcome)
        self.log = read_log_tail(self.log_path)[0]

    @property
    def executed_path(self) -> Path:
        return self.attempt_dir / notebook.EXECUTED_FILE

    def executed(self):
        return nbformat.read(self.executed_path, as_version=4)


def workspace_with(tmp_path: Path, *fixtures: str) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    for name in fixtures:
        shutil.copy(NOTEBOOKS / name, workspace / name)
    return workspace


def write_notebook(workspace: Path, name: str, *sources: str) -> None:
    nbformat.write(v4.new_notebook(cells=[v4.new_code_cell(s) for s in sources]), workspace / name)


def stdout_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


# --- an .ipynb that reads widgets, sets task values and exits in cell 2 --------------------------

@pytest.fixture(scope="module")
def exited(tmp_path_factory):
    workspace = workspace_with(tmp_path_factory.mktemp("exited"), "widgets_and_exit.ipynb")
    # No extension, as Databricks notebook paths are written.
    return Attempt(workspace, {"notebook_path": "widgets_and_exit", "base_parameters": {}},
                   widgets={"region": "us"}, upstream_values={"up": {"n": 7}})


def first_cell_report(attempt: Attempt) -> dict:
    return json.loads(stdout_of(attempt.executed().cells[1]))


def test_exit_ends_the_notebook_successfully_with_its_value(exited):
    assert exited.outcome.exit_code == 0
    assert exited.result.error is None
    assert exited.result.notebook_result == "42"
    assert exited.result.notebook_result_truncated is False


def test_cells_after_the_exit_do_not_run(exited):
    cells = exited.executed().cells
    assert "after exit in the same cell" not in stdout_of(cells[2])
    assert cells[3].outputs == [] and cells[3].execution_count is None
    assert "cell 3 ran" not in exited.log


def test_widgets_take_the_passed_value_over_the_default_and_upstream_values_are_readable(exited):
    report = first_cell_report(exited)
    assert (report["region"], report["day"]) == ("us", "2024-01-01")
    assert report["upstream"] == 7


def test_task_values_set_in_the_notebook_reach_the_worker(exited):
    assert exited.result.task_values == {"rows": 3, "status": {"ok": True}}


def test_the_kernel_runs_this_interpreter_in_the_notebooks_directory_and_the_tasks_group(exited):
    report = first_cell_report(exited)
    assert report["executable"] == sys.executable
    assert report["cwd"] == str(exited.attempt_dir.parent)
    # The runner leads the task's process group; the kernel is its child in that same group,
    # so the worker's timeout/cancel (killpg) reaches the kernel too.
    assert report["ppid"] == exited.outcome.pid
    assert report["pgid"] == exited.outcome.pid


def test_the_saved_notebook_has_the_outputs_and_not_the_hidden_setup(exited):
    original = nbformat.read(NOTEBOOKS / "widgets_and_exit.ipynb", as_version=4)
    executed = exited.executed()
    assert [c.source for c in executed.cells] == [c.source for c in original.cells]
    assert executed.cells[1].execution_count == 1  # the setup code was not counted
    assert "_lakeflow" not in exited.executed_path.read_text()


def test_the_log_shows_progress_and_cell_output(exited):
    assert "[cell 1/3] running" in exited.log and "[cell 2/3] running" in exited.log
    assert "[cell 3/3]" not in exited.log
    assert '"region": "us"' in exited.log


def test_the_attempt_directory_holds_no_kernel_leftovers(exited):
    assert not (exited.attempt_dir / notebook.KERNEL_DIR).exists()


# --- a failing cell -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    workspace = workspace_with(tmp_path_factory.mktemp("failed"), "fails_in_cell_2.ipynb")
    return Attempt(workspace, {"notebook_path": "fails_in_cell_2.ipynb"})


def test_a_failing_cell_fails_the_task_with_the_python_error(failed):
    assert failed.outcome.exit_code == 1
    assert failed.result.error == "ZeroDivisionError: division by zero"
    assert failed.result.error_code is None


def test_the_trace_is_plain_text_and_names_the_failing_code(failed):
    trace = failed.result.error_trace
    assert ANSI_ESCAPE not in trace
    assert "ZeroDivisionError" in trace and "return a / b" in trace and "ratio(1, 0)" in trace
    assert "_lakeflow" not in trace


def test_the_saved_notebook_keeps_the_outputs_up_to_the_failing_cell(failed):
    cells = failed.executed().cells
    assert stdout_of(cells[0]) == "<script>alert(1)</script>\n"
    assert [o.output_type for o in cells[1].outputs] == ["error"]
    assert cells[1].outputs[0].ename == "ZeroDivisionError"
    assert cells[2].outputs == [] and cells[2].execution_count is None


def test_render_html_shows_outputs_escaped(failed):
    html = notebook_html.render_html(str(failed.executed_path))
    assert html.startswith("<!DOCTYPE html>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "ZeroDivisionError" in html
    assert "cdnjs" not in html and "<script src=" not in html  # a standalone page


def test_render_html_keeps_markup_but_drops_scripts_from_markdown_and_html_outputs(tmp_path):
    html_output = ('<style scoped>.df { color: red }</style><table border="1" class="df">'
                   '<thead><tr><th>a</th></tr></thead></table>'
                   '<img src="x" onerror="alert(2)"><a href="javascript:alert(4)">link</a>'
                   '<script>alert(5)</script>')
    cell = v4.new_code_cell("x", outputs=[v4.new_output("display_data",
                                                        data={"text/html": html_output})])
    markdown = "# Title\n\nSome *text*.\n\n| a |\n|---|\n| 1 |\n\n<script>alert(3)</script>"
    nb = v4.new_notebook(cells=[v4.new_markdown_cell(markdown), cell])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    html = notebook_html.render_html(str(tmp_path / "nb.ipynb"))
    assert '<h1 id="Title">' in html and "<p>Some <em>text</em>.</p>" in html
    assert "<thead>" in html and '<table border="1" class="df">' in html
    assert ".df { color: red }</style>" in html
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html


# --- Databricks source format -------------------------------------------------------------------

def test_the_converter_turns_databricks_source_into_cells():
    converted = notebook.databricks_source_to_notebook((NOTEBOOKS / "etl.py").read_text())
    cells = [(c.cell_type, c.source) for c in converted.cells]
    assert cells == [
        ("markdown", "# Daily ETL\n\nLoads the **orders**."),
        ("code", 'dbutils.widgets.text("day", "2024-01-01")\nday = dbutils.widgets.get("day")'),
        ("code", 'print(f"python magic cell, day={day}")'),
        ("code", "%%sh\necho hi from sh"),
        ("code", '%%sh\necho "second line"\npwd'),
        ("code", 'rows = [1, 2, 3]\ndbutils.jobs.taskValues.set("row_count", len(rows))\n'
                 'print("rows", len(rows))'),
    ]
    assert converted.cells[1].metadata["title"] == "Parameters"
    assert converted.metadata.kernelspec.name == "python3"
    nbformat.validate(converted)


def test_the_converter_keeps_pip_and_ipython_magics_as_code():
    source = ("# Databricks notebook source\n# MAGIC %pip install requests==2.32.0\n"
              "# COMMAND ----------\n# MAGIC %md-sandbox\n# MAGIC <b>hi</b>\n")
    cells = notebook.databricks_source_to_notebook(source).cells
    assert [(c.cell_type, c.source) for c in cells] == [
        ("code", "%pip install requests==2.32.0"), ("markdown", "<b>hi</b>")]


@pytest.mark.parametrize("magic", ["%sql", "%scala", "%r", "%run ./other"])
def test_the_converter_rejects_other_languages_naming_the_cell(magic):
    source = f"# Databricks notebook source\nx = 1\n# COMMAND ----------\n# MAGIC {magic}\n"
    with pytest.raises(ValueError, match=f"Cell 2 is a {magic.split()[0]} cell"):
        notebook.databricks_source_to_notebook(source)


def test_a_databricks_source_notebook_runs(tmp_path):
    attempt = Attempt(workspace_with(tmp_path, "etl.py"), {"notebook_path": "etl"},
                      widgets={"day": "2024-05-05"})
    assert attempt.outcome.exit_code == 0, attempt.log
    assert attempt.result.notebook_result is None
    assert attempt.result.task_values == {"row_count": 3}
    cells = attempt.executed().cells
    assert cells[0].cell_type == "markdown"
    assert stdout_of(cells[2]) == "python magic cell, day=2024-05-05\n"
    assert stdout_of(cells[3]) == "hi from sh\n"
    assert stdout_of(cells[4]) == f"second line\n{tmp_path / 'ws'}\n"


def test_a_sql_cell_fails_the_task_clearly_before_any_cell_runs(tmp_path):
    attempt = Attempt(workspace_with(tmp_path, "uses_sql.py"), {"notebook_path": "uses_sql"})
    assert attempt.outcome.exit_code == 1
    assert attempt.result.error_code == "INVALID_RUN_CONFIGURATION"
    assert "Cell 2 is a %sql cell" in attempt.result.error
    assert "python first" not in attempt.log


def test_a_py_file_without_the_databricks_header_is_not_a_notebook(tmp_path):
    with pytest.raises(LaunchError) as raised:
        prepare_attempt({"task_key": "nb", "notebook_task": {"notebook_path": "plain_script"}},
                        attempt_dir=tmp_path / "a",
                        workspace_root=workspace_with(tmp_path, "plain_script.py"))
    assert raised.value.code == "INVALID_RUN_CONFIGURATION"
    assert "# Databricks notebook source" in raised.value.message


# --- prepare ------------------------------------------------------------------------------------

def test_a_missing_notebook_is_resource_not_found_naming_what_was_tried(tmp_path):
    with pytest.raises(LaunchError) as raised:
        prepare_attempt({"task_key": "nb", "notebook_task": {"notebook_path": "x/y"}},
                        attempt_dir=tmp_path / "a", workspace_root=tmp_path)
    missing = tmp_path / "x" / "y"
    assert raised.value.code == "RESOURCE_NOT_FOUND"
    assert raised.value.message == f"Notebook {missing} does not exist (tried {missing}, {missing}.ipynb, {missing}.py)"


def test_source_git_without_the_runs_checkout_is_a_configuration_error(tmp_path):
    with pytest.raises(LaunchError) as raised:
        prepare_attempt({"task_key": "nb", "notebook_task": {"notebook_path": "nb", "source": "GIT"}},
                        attempt_dir=tmp_path / "a", workspace_root=tmp_path)
    assert raised.value.code == "INVALID_RUN_CONFIGURATION"
    assert "needs the job's git_source" in raised.value.message


def test_prepare_finds_the_notebook_by_absolute_path_and_the_kernel_works_in_its_directory(tmp_path):
    workspace = workspace_with(tmp_path, "widgets_and_exit.ipynb")
    spec = notebook.prepare({"notebook_path": str(workspace / "widgets_and_exit")},
                            files=TaskFiles(tmp_path / "elsewhere", (workspace,)), attempt_dir=tmp_path / "a")
    assert spec["notebook_file"] == str(workspace / "widgets_and_exit.ipynb")
    assert spec["notebook_format"] == "ipynb"
    assert spec["cwd"] == str(workspace)
    assert spec["executed_path"] == str(tmp_path / "a" / "notebook.ipynb")


# --- exit values over 5 MB ----------------------------------------------------------------------

def test_notebook_exit_keeps_the_first_5_mb_at_a_character_boundary():
    utils = dbutils_module.DBUtils()
    with pytest.raises(dbutils_module._NotebookExit):
        utils.notebook.exit("é" * (3 * 1024 * 1024))  # 6 MB of UTF-8
    assert utils.notebook.result_truncated is True
    assert len(utils.notebook.result.encode("utf-8")) == dbutils_module.MAX_NOTEBOOK_RESULT_BYTES


def test_a_truncated_exit_value_reaches_the_worker_with_its_flag(tmp_path):
    workspace = workspace_with(tmp_path)
    write_notebook(workspace, "big.ipynb", 'dbutils.notebook.exit("é" * (3 * 1024 * 1024))')
    attempt = Attempt(workspace, {"notebook_path": "big"})
    assert attempt.outcome.exit_code == 0, attempt.log
    assert attempt.result.notebook_result_truncated is True
    assert attempt.result.notebook_result == "é" * (dbutils_module.MAX_NOTEBOOK_RESULT_BYTES // 2)


# --- the kernel dies with the task --------------------------------------------------------------

def test_canceling_the_attempt_kills_the_kernel_and_keeps_the_outputs_so_far(tmp_path):
    workspace = workspace_with(tmp_path)
    pid_file, sleeping = tmp_path / "kernel.pid", tmp_path / "sleeping"
    # Canceled once the second cell runs: by then the first cell's output has reached the runner
    # (canceling as the first cell wrote its pid raced with that output under load).
    write_notebook(workspace, "slow.ipynb",
                   f"import os\nprint('started')\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))",
                   f"import time\nopen({str(sleeping)!r}, 'w').close()\ntime.sleep(60)")
    attempt = Attempt(workspace, {"notebook_path": "slow"}, should_cancel=sleeping.exists)
    assert attempt.outcome.canceled
    assert attempt.outcome.exit_code == -15  # SIGTERM ends the runner as it ends a script
    assert not os.path.exists(attempt.spec.result_path)
    kernel_pid = int(pid_file.read_text())
    assert not _is_alive(kernel_pid)
    assert stdout_of(attempt.executed().cells[0]) == "started\n"


def _is_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in (b"Z", b"X")


def test_a_kernel_that_dies_fails_the_task_naming_the_cell(tmp_path):
    workspace = workspace_with(tmp_path)
    write_notebook(workspace, "dies.ipynb", "print('one')", "import os\nos._exit(3)", "print('three')")
    attempt = Attempt(workspace, {"notebook_path": "dies"})
    assert attempt.outcome.exit_code == 1
    assert attempt.result.error == "The Python kernel died while running cell 2 (e.g. out of memory)"
    assert stdout_of(attempt.executed().cells[0]) == "one\n"


def test_a_notebook_importing_databricks_sdk_runtime_gets_this_dbutils(tmp_path):
    workspace = workspace_with(tmp_path)
    write_notebook(workspace, "runtime.ipynb",
                   "from databricks.sdk.runtime import dbutils as runtime_dbutils\n"
                   "print(runtime_dbutils is dbutils, runtime_dbutils.widgets.get('region'))",
                   "dbutils.notebook.exit('done')")
    attempt = Attempt(workspace, {"notebook_path": "runtime"}, widgets={"region": "eu"})
    assert attempt.outcome.succeeded, attempt.result.error
    assert stdout_of(attempt.executed().cells[0]) == "True eu\n"
