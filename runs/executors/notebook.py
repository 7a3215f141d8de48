"""``notebook_task``: run a Jupyter or Databricks-source notebook in a real IPython kernel.

``prepare`` runs in the worker (cheap checks only, no third-party imports); ``run`` runs in the
task process (``runner.py``) and returns the result dict the runner writes for the worker:

- the kernel runs on this process's interpreter and stays in the task's process group, so the
  worker's timeout and cancel (which kill the whole group) also kill the kernel;
- before the first cell, hidden setup code (not saved in the notebook) installs ``dbutils`` in
  the kernel and makes ``dbutils.notebook.exit`` end the notebook: the kernel writes the exit
  value to ``exit_path`` and we stop executing cells;
- the executed notebook (outputs included, also on failure) is saved to ``executed_path`` after
  every cell, so a killed attempt still leaves what it had done; ``runs/notebook_html.py`` turns
  it into a standalone page for the web.

nbformat, nbclient, jupyter_client and nbconvert are imported where they are used: the worker
imports this module for ``prepare`` only.
"""

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from .errors import LaunchError
from .files import open_task_file

DATABRICKS_HEADER = "# Databricks notebook source"
_CELL_SEPARATOR = "# COMMAND ----------"
_MAGIC_PREFIX = "# MAGIC"
_TITLE_PREFIX = "# DBTITLE "

# Databricks cell languages and commands that have no IPython equivalent here.
_UNSUPPORTED_MAGICS = {"sql", "scala", "r", "run", "fs"}

EXECUTED_FILE = "notebook.ipynb"
EXIT_FILE = "notebook_exit.json"
KERNEL_DIR = "kernel"
DBUTILS_PATH = str(Path(__file__).resolve().with_name("dbutils.py"))

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


# --- prepare (worker side) ---------------------------------------------------------------------

def prepare(body: dict, *, files, attempt_dir: Path) -> dict:
    """Find the notebook and return the JSON-able part of the runner spec for it."""
    source = body.get("source") or "WORKSPACE"
    if source not in ("WORKSPACE", "GIT"):  # GIT: `files` is the run's checkout (launch.py)
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"notebook_task.source must be WORKSPACE or GIT, not {source!r}")
    notebook_file = _resolve_notebook_path(body.get("notebook_path"), files)
    return {
        "notebook_file": notebook_file,
        "notebook_format": _notebook_format(notebook_file),
        "executed_path": str(Path(attempt_dir) / EXECUTED_FILE),
        "exit_path": str(Path(attempt_dir) / EXIT_FILE),
        "cwd": os.path.dirname(notebook_file),
    }


def _resolve_notebook_path(notebook_path, files) -> str:
    """Workspace paths usually have no extension: try as given, then .ipynb, then .py; each inside
    the workspace (``files.locate``)."""
    if not isinstance(notebook_path, str) or not notebook_path:
        raise LaunchError("INVALID_RUN_CONFIGURATION", "notebook_task.notebook_path is required")
    path = os.path.abspath(os.path.join(files.workspace_root, notebook_path))
    has_extension = path.endswith((".ipynb", ".py"))
    candidates = [path] if has_extension else [path, f"{path}.ipynb", f"{path}.py"]
    for candidate in candidates:
        located = files.locate(candidate, "notebook_path")
        if os.path.isfile(located):
            return located
    tried = ", ".join(candidates)
    raise LaunchError("RESOURCE_NOT_FOUND", f"Notebook {path} does not exist (tried {tried})")


def _notebook_format(path: str) -> str:
    """"ipynb" or "databricks_source"; a .py file must carry the Databricks header line."""
    if path.endswith(".ipynb"):
        return "ipynb"
    try:  # it may lie in a tree tasks write: never through a symlink, never waiting on a FIFO
        with open_task_file(path, max_bytes=2**62) as f:
            first_line = f.readline(200).decode("utf-8", errors="replace")
    except OSError as exc:
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"notebook {path} cannot be read ({exc.strerror or exc}): a notebook must be a regular file") from None
    if first_line.lstrip("\ufeff").rstrip() == DATABRICKS_HEADER:
        return "databricks_source"
    if not path.endswith(".py") and first_line.lstrip().startswith("{"):
        return "ipynb"  # an extension-less .ipynb
    raise LaunchError("INVALID_RUN_CONFIGURATION",
                      f"{path} is not a notebook: a Python notebook source file must start "
                      f"with the line {DATABRICKS_HEADER!r}")


# --- Databricks source format ------------------------------------------------------------------

def databricks_source_to_notebook(text: str):
    """Convert a Databricks ``.py`` notebook export to an nbformat v4 notebook.

    Raises ValueError for cells in a language this executor cannot run (%sql, %scala, %r, %run).
    """
    import nbformat.v4 as v4

    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].rstrip() != DATABRICKS_HEADER:
        raise ValueError(f"Not a Databricks notebook: the first line must be {DATABRICKS_HEADER!r}")
    cells = []
    for number, cell_lines in enumerate(_split_cells(lines[1:]), start=1):
        cell = _convert_cell(number, cell_lines, v4)
        if cell is not None:
            cells.append(cell)
    return v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })


def _split_cells(lines: list[str]) -> list[list[str]]:
    cells = [[]]
    for line in lines:
        if line.rstrip() == _CELL_SEPARATOR:
            cells.append([])
        else:
            cells[-1].append(line)
    return cells


def _convert_cell(number: int, lines: list[str], v4):
    """One source cell as a notebook cell; None for an empty one."""
    title = None
    lines = _trim_blank_lines(lines)
    if lines and lines[0].startswith(_TITLE_PREFIX) and "," in lines[0]:
        title = lines[0].split(",", 1)[1].strip()
        lines = _trim_blank_lines(lines[1:])
    if not lines:
        return None
    if lines[0].startswith(_MAGIC_PREFIX):
        cell = _convert_magic_cell(number, [_strip_magic(line) for line in lines], v4)
    else:
        cell = v4.new_code_cell("\n".join(lines))
    if title:
        cell.metadata["title"] = title
    return cell


def _convert_magic_cell(number: int, lines: list[str], v4):
    magic, _, rest = lines[0].partition(" ")
    body = _trim_blank_lines(([rest] if rest.strip() else []) + lines[1:])
    name = magic[1:].lower() if magic.startswith("%") else ""
    if name in ("md", "md-sandbox"):
        return v4.new_markdown_cell("\n".join(body))
    if name == "python":
        return v4.new_code_cell("\n".join(body))
    if name == "sh":
        return v4.new_code_cell("\n".join(["%%sh", *body]))
    if name in _UNSUPPORTED_MAGICS:
        raise ValueError(f"Cell {number} is a {magic} cell: only Python, %md, %sh and %pip cells "
                         f"can run in this executor")
    # %pip and IPython's own magics (%timeit, %matplotlib, ...) run as they are.
    return v4.new_code_cell("\n".join(lines))


def _strip_magic(line: str) -> str:
    if not line.startswith(_MAGIC_PREFIX):
        return line
    rest = line[len(_MAGIC_PREFIX):]
    return rest[1:] if rest.startswith(" ") else rest


def _trim_blank_lines(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


# --- run (task process side) -------------------------------------------------------------------

def run(spec: dict) -> dict:
    """Execute the notebook cell by cell; return the runner's result dict."""
    _remove(spec["exit_path"])  # a redelivered attempt reuses its directory
    try:
        notebook = load_notebook(spec["notebook_file"], spec["notebook_format"])
    except FileNotFoundError:
        return _task_error("RESOURCE_NOT_FOUND", f"Notebook {spec['notebook_file']} does not exist")
    except ValueError as exc:  # includes nbformat's "not JSON" and our unsupported cells
        return _task_error("INVALID_RUN_CONFIGURATION", f"Cannot run {spec['notebook_file']}: {exc}")
    return asyncio.run(_execute_notebook(notebook, spec))


def load_notebook(path: str, notebook_format: str):
    import nbformat

    if notebook_format == "databricks_source":
        with open(path, encoding="utf-8") as f:
            return databricks_source_to_notebook(f.read())
    return nbformat.read(path, as_version=4)


async def _execute_notebook(notebook, spec: dict) -> dict:
    # Not in ~/.local/share/jupyter/runtime: the attempt keeps its files together. In a
    # directory of its own, because jupyter_client sets the sticky bit on the file's directory.
    kernel_dir = os.path.join(os.path.dirname(spec["executed_path"]), KERNEL_DIR)
    os.makedirs(kernel_dir, exist_ok=True)
    connection_file = os.path.join(kernel_dir, "connection.json")
    client = _notebook_client(notebook, connection_file)
    executed_path = spec["executed_path"]
    _save(notebook, executed_path)
    try:
        # cleanup_kc: nbclient shuts down only kernels whose manager it created itself.
        async with client.async_setup_kernel(cwd=spec["cwd"], cleanup_kc=True):
            _die_on_sigterm()
            await _run_hidden_setup(client.kc, spec)
            return await _execute_cells(client, spec)
    finally:
        _save(notebook, executed_path)
        _remove_empty_dir(kernel_dir)


def _notebook_client(notebook, connection_file: str):
    from nbclient import NotebookClient

    class EchoingNotebookClient(NotebookClient):
        """Copies cell stdout/stderr into our own streams, i.e. the attempt log, as it comes."""

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] == "stream":
                stream = sys.stderr if msg["content"].get("name") == "stderr" else sys.stdout
                stream.write(msg["content"].get("text", ""))
                stream.flush()
            return super().output(outs, msg, display_id, cell_index)

    return EchoingNotebookClient(
        notebook,
        km=_task_kernel_manager(connection_file),
        timeout=None,  # the worker enforces the task's timeout by killing the process group
        kernel_name="python3",
        shutdown_kernel="immediate",
    )


async def _execute_cells(client, spec: dict) -> dict:
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    cells = client.nb.cells
    code_cells = [i for i, cell in enumerate(cells) if cell.cell_type == "code"]
    for number, index in enumerate(code_cells, start=1):
        print(f"[cell {number}/{len(code_cells)}] running", flush=True)
        try:
            await client.async_execute_cell(cells[index], index)
        except CellExecutionError as exc:
            # dbutils.notebook.exit raises too, after its handler has written the exit file.
            if _read_exit(spec["exit_path"]) is None:
                return _cell_failure(cells[index], exc)
        except DeadKernelError:
            message = f"The Python kernel died while running cell {number} (e.g. out of memory)"
            sys.stderr.write(f"Error: {message}\n")
            return {"exit_code": 1, "error": message}
        finally:
            _save(client.nb, spec["executed_path"])
        exited = _read_exit(spec["exit_path"])
        if exited is not None:
            print(f"[cell {number}/{len(code_cells)}] dbutils.notebook.exit: "
                  "skipping the remaining cells", flush=True)
            return _success(exited)
    return _success(None)


def _die_on_sigterm() -> None:
    """Undo nbclient's SIGTERM handler, which would keep running cells while it cleans up.

    The worker's timeout and cancel SIGTERM the whole group: like any task process, we end at
    once and report nothing; the kernel, in the same group, gets the signal too.
    """
    import signal

    asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)


def _success(exited: dict | None) -> dict:
    result = {"exit_code": 0, "notebook_result": exited["result"] if exited else None}
    if exited and exited.get("truncated"):
        result["notebook_result_truncated"] = True
    return result


def _cell_failure(cell, exc) -> dict:
    """The error the way Python words it, and the kernel's traceback as plain text."""
    trace = exc.traceback
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            trace = "\n".join(output.get("traceback") or [])
    evalue = (exc.evalue or "").splitlines()
    return _failure(f"{exc.ename}: {evalue[0]}" if evalue else exc.ename, trace)


def _failure(error: str, trace: str) -> dict:
    trace = strip_ansi(trace)
    sys.stderr.write(trace + "\n")
    return {"exit_code": 1, "error": error, "error_trace": trace}


def _task_error(code: str, message: str) -> dict:
    sys.stderr.write(f"Error: {message}\n")
    return {"exit_code": 1, "error": message, "error_code": code}


def strip_ansi(text: str) -> str:
    return _ANSI_ESCAPE.sub("", text)


def _read_exit(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _save(notebook, path: str) -> None:
    """Atomically: the web UI may read the file while the attempt is still running."""
    import nbformat

    tmp = f"{path}.{os.getpid()}.tmp"
    nbformat.write(notebook, tmp)
    os.replace(tmp, path)


def _remove_empty_dir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- the kernel --------------------------------------------------------------------------------

def _task_kernel_manager(connection_file: str):
    """An ipykernel on ``sys.executable`` (never a kernelspec found elsewhere on the machine)."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.provisioning import LocalProvisioner

    class SameGroupProvisioner(LocalProvisioner):
        """Starts the kernel in our process group; jupyter_client would give it a new session.

        A kernel in its own session would survive the worker killing the task's group.
        """

        async def launch_kernel(self, cmd, **kwargs):
            import subprocess

            env = dict(kwargs.get("env") or os.environ)
            env["JPY_PARENT_PID"] = str(os.getpid())  # the kernel exits when we do
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env,
                                            cwd=kwargs.get("cwd"))
            self.pid = self.process.pid
            self.pgid = None  # signal the kernel alone: its group is ours
            self.cwd = kwargs.get("cwd")
            return self.connection_info

    spec = KernelSpec(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python 3 (ipykernel)", language="python", name="python3",
        metadata={"supported_encryption": ["curve"]},
    )
    # CurveZMQ: other local users cannot read the traffic on the kernel's localhost ports.
    manager = AsyncKernelManager(kernel_name="python3", transport_encryption="auto",
                                 connection_file=connection_file)
    manager._kernel_spec = spec  # the kernel_spec property caches here
    manager.kernel_id = manager.kernel_id or _new_kernel_id()
    manager.provisioner = SameGroupProvisioner(kernel_id=manager.kernel_id, kernel_spec=spec,
                                               parent=manager)
    return manager


def _new_kernel_id() -> str:
    import uuid

    return str(uuid.uuid4())


# Runs in the kernel before the first cell, with store_history=False so it is neither saved nor
# counted. It loads dbutils.py by path (the kernel's sys.path need not hold this project).
_KERNEL_SETUP = r'''
def _lakeflow_setup(config):
    import json, os, sys
    from importlib.machinery import ModuleSpec, SourceFileLoader

    name = "_lakeflow_dbutils"
    loader = SourceFileLoader(name, config["dbutils_path"])
    module = type(sys)(name)
    module.__file__ = config["dbutils_path"]
    module.__loader__ = loader
    module.__spec__ = ModuleSpec(name, loader, origin=config["dbutils_path"])
    sys.modules[name] = module
    loader.exec_module(module)
    dbutils = module.install(**config["install"])
    shell = get_ipython()
    if "open" in shell.user_ns:  # IPython's own open shadows the builtin in notebooks
        shell.user_ns["open"] = module.fuse_open(shell.user_ns["open"])

    def on_notebook_exit(shell, etype, value, tb, tb_offset=None):
        notebook = dbutils.notebook
        tmp = config["exit_path"] + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"result": notebook.result, "truncated": notebook.result_truncated}, f)
        os.replace(tmp, config["exit_path"])
        shown = notebook.result if len(notebook.result) <= 1000 else notebook.result[:1000] + "..."
        print(f"Notebook exited: {shown}")
        return []  # no traceback

    get_ipython().set_custom_exc((module._NotebookExit,), on_notebook_exit)

_lakeflow_setup(__import__("json").loads(%s))
del _lakeflow_setup
'''


def _kernel_setup_code(spec: dict) -> str:
    config = {
        "dbutils_path": DBUTILS_PATH,
        "exit_path": spec["exit_path"],
        "install": {
            "task_key": spec.get("task_key"),
            "widgets": spec.get("widgets") or {},
            "upstream_values": spec.get("upstream_values") or {},
            "values_path": spec.get("values_path"),
            "lineage_path": spec.get("lineage_path"),
        },
    }
    return _KERNEL_SETUP % repr(json.dumps(config))


async def _run_hidden_setup(kernel_client, spec: dict) -> None:
    reply = await kernel_client.execute_interactive(
        _kernel_setup_code(spec), silent=True, store_history=False,
        output_hook=lambda msg: None,  # silent code has no output worth showing
    )
    content = reply["content"]
    if content["status"] != "ok":
        trace = strip_ansi("\n".join(content.get("traceback") or []))
        raise RuntimeError(f"Setting up dbutils in the kernel failed:\n{trace}")


# --- HTML --------------------------------------------------------------------------------------
