"""Runs one task attempt inside its own process: ``python /abs/path/runner.py SPEC.json``.

(``launch`` starts it through a two-line ``-c`` bootstrap that loads this file from its
bytecode cache; both ways run ``main``.)

The worker (``launch.prepare_attempt``) writes the spec; this script installs ``dbutils``, runs
the task, and reports to the worker through two files named in the spec:

- ``values_path``: the task values, a JSON object, rewritten on every ``taskValues.set`` so values
  set before a crash survive;
- ``result_path``: ``{"exit_code": 0, "notebook_result": ...}`` on success, or
  ``{"error", "error_trace", "error_code", "exit_code"}`` on failure. Nothing is written when
  the process is killed; the worker reads that from the exit status.

Spec (JSON object): ``kind`` ("python_file" or "python_wheel"), ``argv`` (``sys.argv`` for the
task), ``python_file`` or ``package_name`` + ``entry_point``, ``task_key``, ``widgets``,
``upstream_values`` ({task_key: {key: value}}), ``result_path``, ``values_path``.

Start-up cost matters (every task attempt pays it), so this file imports only ``os`` and ``sys``
at the top, loads ``dbutils.py`` by its file location (it is run as a script, not from the
``runs`` package), and imports anything heavier (``json``, ``traceback``, ``importlib.metadata``)
only on the paths that need it.
"""

import os
import sys

SUPERVISOR_PID_ENV = "LAKEFLOW_SUPERVISOR_PID"
"""Pid of the process that spawned us; we exit at once if our parent is already someone else."""

PDEATHSIG_SET_ENV = "LAKEFLOW_PDEATHSIG_SET"
"""Set to "1" by a supervisor that already set PR_SET_PDEATHSIG before exec (it survives exec)."""

_PR_SET_PDEATHSIG = 1
_SIGKILL = 9


class _TaskError(Exception):
    """A failure that is not the user's code raising: reported with an error code, no trace."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _die_with_parent():
    """Make sure this process never outlives the worker that spawned it."""
    # Popped, so that a runner the task itself starts does not believe they apply to it.
    already_set = os.environ.pop(PDEATHSIG_SET_ENV, None) == "1"
    expected = os.environ.pop(SUPERVISOR_PID_ENV, "")
    if not already_set:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, _SIGKILL)
        except Exception:  # not Linux: no parent-death signal, the pid check below still runs
            pass
    # If the parent died before the signal was armed, we have been re-parented already.
    if expected.isdigit() and os.getppid() != int(expected):
        sys.stderr.write(f"lakeflow runner: supervisor {expected} is gone; not starting the task\n")
        os._exit(1)


def _load_json_file(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    try:
        # The C scanner behind json.loads, used directly: ``import json`` pulls in ``re`` and
        # ``enum`` and costs about half a bare interpreter's start-up.
        from _json import make_scanner

        obj, end = make_scanner(_JsonContext)(text, 0)
        if not text[end:].strip():
            return obj
    except Exception:
        pass
    import json

    return json.loads(text)


class _JsonContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float


def _to_json(obj):
    """JSON text of a flat dict of None/bool/int/str (the result file), without ``import json``."""
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:
        quote = None
    parts = []
    for key, value in obj.items():
        if quote is None:
            break
        if value is None:
            text = "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = int.__repr__(value)
        elif isinstance(value, str):
            text = quote(value)
        else:
            break
        parts.append(f"{quote(key)}: {text}")
    else:
        return "{" + ", ".join(parts) + "}"
    import json

    return json.dumps(obj)


def _write_atomically(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _load_dbutils():
    name = "_lakeflow_dbutils"
    if name in sys.modules:  # a fork server loaded it before forking us
        return sys.modules[name]
    from importlib.machinery import ModuleSpec, SourceFileLoader

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dbutils.py")
    loader = SourceFileLoader(name, path)
    module = type(sys)(name)
    module.__file__ = path
    module.__loader__ = loader
    module.__spec__ = ModuleSpec(name, loader, origin=path)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def _run_python_file(spec):
    """Run the file as ``__main__``, the way ``python script.py`` does."""
    path = spec["python_file"]
    if not os.path.isfile(path):
        raise _TaskError("RESOURCE_NOT_FOUND", f"python_file {path} does not exist")
    sys.argv[:] = spec["argv"]
    _drop_runner_dir_from_path()
    sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec", dont_inherit=True)
    # A fresh module rather than runpy.run_path: same result for the script, and runpy's imports
    # (importlib.util, contextlib, ...) would cost a few ms on every task start.
    main = type(sys)("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = sys.modules["builtins"]
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _run_wheel(spec):
    function = _find_entry_point(spec["package_name"], spec["entry_point"])
    sys.argv[:] = spec["argv"]
    _drop_runner_dir_from_path()
    returned = function()
    # Like a console script's ``sys.exit(main())``: a non-zero int or a non-empty str fails.
    # Other return values (a function that returns a result object) are ignored.
    if isinstance(returned, int) and returned:
        raise SystemExit(int(returned))
    if isinstance(returned, str) and returned:
        raise SystemExit(returned)


def _find_entry_point(package_name, entry_point):
    """The entry point of that name in the distribution, else the module's attribute."""
    from importlib import metadata

    try:
        entry_points = list(metadata.distribution(package_name).entry_points)
        found = "has no entry point of that name"
    except metadata.PackageNotFoundError:
        entry_points = []
        found = "is not installed"
    matches = [ep for ep in entry_points if ep.name == entry_point]
    matches.sort(key=lambda ep: ep.group != "console_scripts")
    if matches:
        return matches[0].load()

    import importlib

    module_name = package_name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module does not exist" falls through; an import error inside it is the
        # user's bug and is reported with its traceback.
        if not exc.name or not (module_name + ".").startswith(exc.name + "."):
            raise
        module = None
    if module is not None and hasattr(module, entry_point):
        return getattr(module, entry_point)
    missing = "cannot be imported" if module is None else f"has no attribute {entry_point!r}"
    raise _TaskError(
        "RESOURCE_NOT_FOUND",
        f"Entry point {entry_point!r} not found: distribution {package_name!r} {found}, "
        f"and module {module_name!r} {missing}",
    )


def _executor_module(kind):
    """runs.executors.notebook / .sql: heavier modules, imported from the project by package."""
    import importlib

    project_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, project_root)
    try:
        return importlib.import_module(f"runs.executors.{kind}")
    finally:
        sys.path.remove(project_root)


def _drop_runner_dir_from_path():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]


def _format_trace(exc):
    import traceback

    tb = exc.__traceback__
    # The runner's frames (and the -c bootstrap's) come first; the user's code starts after them.
    ours = (_format_trace.__code__.co_filename, "<string>")
    while tb is not None and tb.tb_frame.f_code.co_filename in ours:
        tb = tb.tb_next
    trace = "".join(traceback.format_exception(type(exc), exc, tb))
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return summary, trace


def _execute(spec, notebook_exit):
    """Run the task and return the result dict for the worker."""
    try:
        kind = spec.get("kind")
        if kind == "python_file":
            _run_python_file(spec)
        elif kind == "python_wheel":
            _run_wheel(spec)
        elif kind in ("notebook", "sql", "dbt"):
            # These report their own result (cell errors, the exit value, the SQL preview, dbt's tables).
            return _executor_module(kind).run(spec)
        else:
            raise _TaskError("INVALID_RUN_CONFIGURATION", f"Unknown task kind {kind!r} in the spec")
    except notebook_exit:
        pass
    except SystemExit as exc:
        code = exc.code
        if code is None or (isinstance(code, int) and code == 0):
            return {"exit_code": 0}
        if not isinstance(code, int):
            sys.stderr.write(f"{code}\n")  # what Python prints for sys.exit("message")
        _, trace = _format_trace(exc)
        return {
            "error": f"SystemExit: {code}",
            "error_trace": trace,
            # The OS keeps only 8 bits: sys.exit(256) must not look like success.
            "exit_code": int(code) if isinstance(code, int) and 0 < code < 256 else 1,
        }
    except _TaskError as exc:
        sys.stderr.write(f"Error: {exc.message}\n")
        return {"error": exc.message, "error_code": exc.code, "exit_code": 1}
    except BaseException as exc:
        summary, trace = _format_trace(exc)
        sys.stderr.write(trace)
        return {"error": summary, "error_trace": trace, "exit_code": 1}
    return {"exit_code": 0}


def main(argv):
    _die_with_parent()
    if len(argv) != 2:
        sys.stderr.write("usage: runner.py SPEC.json\n")
        return 2
    spec = _load_json_file(argv[1])
    runner_pid = os.getpid()
    dbutils = _load_dbutils()
    instance = dbutils.install(
        task_key=spec.get("task_key"),
        widgets=spec.get("widgets"),
        upstream_values=spec.get("upstream_values"),
        values_path=spec.get("values_path"),
        lineage_path=spec.get("lineage_path"),
    )

    result = _execute(spec, dbutils._NotebookExit)

    if result["exit_code"] == 0 and "notebook_result" not in result:
        result["notebook_result"] = instance.notebook.result
        if instance.notebook.result_truncated:
            result["notebook_result_truncated"] = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    # A child forked by the task (os.fork) that falls through to here must not report.
    if os.getpid() == runner_pid and spec.get("result_path"):
        _write_atomically(spec["result_path"], _to_json(result))
    return result["exit_code"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
