"""A Databricks-compatible ``dbutils`` for task processes: task values, widgets, notebook.exit.

The runner installs one instance as ``builtins.dbutils`` so existing Databricks scripts run
unchanged. Standard library only, and nothing heavy at import time: this module is loaded into
every task process before the user's code starts. ``json`` is imported on first use.
"""

import os

MAX_TASK_VALUE_BYTES = 48 * 1024
"""A task value's JSON encoding may not be longer than this (Databricks: 48 KiB)."""

MAX_NOTEBOOK_RESULT_BYTES = 5 * 1024 * 1024
"""``notebook_output.result`` keeps the first 5 MB of the ``dbutils.notebook.exit`` value."""


class _NotebookExit(BaseException):
    """Raised by ``dbutils.notebook.exit``; the runner catches it and reports success.

    A ``BaseException`` (like ``SystemExit``), so a user's ``except Exception:`` around the call
    does not swallow the exit.
    """


class InputWidgetNotDefined(Exception):
    """Raised by ``dbutils.widgets.get`` for a widget that was neither passed nor defined."""


# Tracebacks in a task name it "dbutils.InputWidgetNotDefined", whatever name the runner loaded
# this file under.
InputWidgetNotDefined.__module__ = "dbutils"


def encode_task_value(key, value):
    """Return the JSON text of one task value, or raise TypeError/ValueError with the reason."""
    import json

    if not isinstance(key, str):
        raise TypeError(f"Task value keys must be strings, not {type(key).__name__}: {key!r}")
    if not key:
        raise ValueError("Task value keys must not be empty")
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Task value {key!r} is not JSON-serialisable: {exc}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_TASK_VALUE_BYTES:
        raise ValueError(
            f"Task value {key!r} is {size} bytes as JSON; "
            f"the limit is {MAX_TASK_VALUE_BYTES} bytes (48 KiB)"
        )
    return text


def write_values_file(path, texts):
    """Write {key: JSON text} as one JSON object, atomically (readers never see half a file)."""
    import json

    body = ", ".join(f"{json.dumps(key, ensure_ascii=False)}: {text}" for key, text in texts.items())
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("{" + body + "}")
    os.replace(tmp, path)


class TaskValues:
    """``dbutils.jobs.taskValues``."""

    def __init__(self, *, task_key=None, upstream=None, values_path=None, in_job=True):
        self._task_key = task_key
        self._upstream = upstream or {}
        self._values_path = values_path
        self._in_job = in_job
        # JSON texts, so a value is kept as it was when set even if the caller mutates it later.
        self._texts = {}

    def set(self, key, value):
        self._texts[key] = encode_task_value(key, value)
        # Written on every change, so values set before a crash still reach the worker.
        if self._values_path:
            write_values_file(self._values_path, self._texts)

    def get(self, taskKey, key, default=None, debugValue=None):
        if not self._in_job:
            # Databricks returns debugValue when the code runs outside a job.
            if debugValue is None:
                raise TypeError("debugValue must be given when running outside a job")
            return debugValue
        if taskKey == self._task_key and key in self._texts:
            import json

            return json.loads(self._texts[key])
        values = self._upstream.get(taskKey) or {}
        if key in values:
            return values[key]
        if default is not None:
            return default
        raise ValueError(
            f"No task value {key!r} for task {taskKey!r}: the task did not set it "
            f"(or is not upstream of this task), and no default was given"
        )

    def values(self):
        """The values this task has set so far."""
        import json

        return {key: json.loads(text) for key, text in self._texts.items()}


class Jobs:
    """``dbutils.jobs``."""

    def __init__(self, task_values):
        self.taskValues = task_values


class Widgets:
    """``dbutils.widgets`` backed by the values the job passed in.

    A passed value wins over a widget's default, as in a Databricks job run.
    """

    def __init__(self, values=None):
        self._passed = dict(values or {})
        self._defaults = {}

    def get(self, name):
        if name in self._passed:
            return self._passed[name]
        if name in self._defaults:
            return self._defaults[name]
        raise InputWidgetNotDefined(f"No input widget named {name!r} is defined")

    def getArgument(self, name, optional=None):
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            if optional is None:
                raise
            return optional

    def getAll(self):
        return {**self._defaults, **self._passed}

    def text(self, name, defaultValue, label=None):
        self._define(name, defaultValue)

    def dropdown(self, name, defaultValue, choices, label=None):
        self._define_with_choices(name, defaultValue, choices)

    def combobox(self, name, defaultValue, choices, label=None):
        self._define(name, defaultValue)

    def multiselect(self, name, defaultValue, choices, label=None):
        self._define_with_choices(name, defaultValue, choices)

    def remove(self, name):
        if name not in self._defaults:
            raise InputWidgetNotDefined(f"No input widget named {name!r} is defined")
        del self._defaults[name]

    def removeAll(self):
        self._defaults.clear()

    def _define(self, name, default):
        if not isinstance(name, str) or not name:
            raise ValueError(f"Widget names must be non-empty strings, not {name!r}")
        self._defaults[name] = str(default)

    def _define_with_choices(self, name, default, choices):
        choices = [str(c) for c in choices]
        if str(default) not in choices:
            raise ValueError(f"Default value {default!r} of widget {name!r} is not one of {choices}")
        self._define(name, default)


class Notebook:
    """``dbutils.notebook``."""

    def __init__(self):
        self.result = None
        self.result_truncated = False

    def exit(self, value):
        # Databricks takes a string; other values arrive as their str().
        text = value if isinstance(value, str) else str(value)
        data = text.encode("utf-8")
        if len(data) > MAX_NOTEBOOK_RESULT_BYTES:
            text = data[:MAX_NOTEBOOK_RESULT_BYTES].decode("utf-8", errors="ignore")
            self.result_truncated = True
        self.result = text
        raise _NotebookExit()

    def run(self, path, timeout_seconds=0, arguments=None):
        raise NotImplementedError("dbutils.notebook.run is not supported by this executor yet")


class Lineage:
    """Ours, not Databricks': what code that does not speak OpenLineage read and wrote.

    ``dbutils.lineage.record(reads=["default.main.orders"], writes=["/Volumes/main/raw/files"])``
    names tables as ``<warehouse>.<schema>.<table>`` and files by path; the lineage app shows
    them as the task's reads and writes in this run (captured as ``declared``)."""

    def __init__(self, path=None):
        self._path = path

    def record(self, reads=(), writes=()):
        reads, writes = _names("reads", reads), _names("writes", writes)
        if self._path is None:  # outside a job run: nothing to record into
            return
        import json

        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"reads": reads, "writes": writes}, ensure_ascii=False) + "\n")


def _names(what, names):
    if isinstance(names, str):
        names = [names]
    names = list(names)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"dbutils.lineage.record: {what} must be table names or paths (strings), "
                            f"not {name!r}")
    return [name.strip() for name in names]


class DBUtils:
    """The object scripts see as ``dbutils``."""

    def __init__(self, *, task_key=None, widgets=None, upstream_values=None, values_path=None,
                 in_job=True, lineage_path=None):
        self.widgets = Widgets(widgets)
        self.jobs = Jobs(TaskValues(task_key=task_key, upstream=upstream_values,
                                    values_path=values_path, in_job=in_job))
        self.notebook = Notebook()
        self.lineage = Lineage(lineage_path)
        self._fs = None
        self._secrets = None

    @property
    def fs(self):
        """``dbutils.fs``, loaded on first use (most tasks never touch it)."""
        if self._fs is None:
            roots = _sibling("workspace_paths").Roots.from_env(os.environ.get("LAKEFLOW_FS_ROOTS"))
            if roots is None:
                raise RuntimeError("dbutils.fs works in task runs of this server, which say where dbfs:/, "
                                   "/Volumes and /Workspace live (LAKEFLOW_FS_ROOTS is not set)")
            self._fs = _sibling("dbutils_fs").FileSystem(roots)
        return self._fs

    @property
    def secrets(self):
        """``dbutils.secrets`` (dbutils_secrets.py), loaded on first use."""
        if self._secrets is None:
            self._secrets = _sibling("dbutils_secrets").Secrets()
        return self._secrets

    def __repr__(self):
        return "<dbutils (lakeflow)>"


def _sibling(name):
    """A module of this directory, loaded by file location (task processes do not import this
    project as a package)."""
    import sys

    qualified = f"_lakeflow_{name}"
    if qualified not in sys.modules:
        from importlib.util import module_from_spec, spec_from_file_location

        spec = spec_from_file_location(qualified, os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py"))
        module = module_from_spec(spec)
        sys.modules[qualified] = module  # before running it: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[qualified]


SPARK_MESSAGE = ("spark is not available on this server: it runs no Spark cluster. Use a sql_task on a SQL "
                 "warehouse (DuckDB or PostgreSQL), DuckDB or pandas in Python, and dbutils for widgets, task "
                 "values and notebook.exit")


class NoSpark:
    """Where Databricks code finds ``spark``: any use says what to use instead."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise SparkUnavailable(SPARK_MESSAGE)

    def __call__(self, *args, **kwargs):
        raise SparkUnavailable(SPARK_MESSAGE)

    def __repr__(self):
        return "<spark: not available on this server>"


class SparkUnavailable(RuntimeError):
    pass


SparkUnavailable.__module__ = "dbutils"


def runtime_module(namespace):
    """A ``dbruntime`` module as a Databricks runtime has one: ``databricks.sdk.runtime`` (``from
    databricks.sdk.runtime import dbutils``) and ``WorkspaceClient().dbutils`` take the notebook
    namespace from ``dbruntime.UserNamespaceInitializer``, so they give this dbutils instead of
    the SDK's remote one."""
    import types

    class UserNamespaceInitializer:
        @classmethod
        def getOrCreate(cls):  # noqa: N802 (the runtime's name)
            return cls()

        def get_namespace_globals(self):
            return namespace

    module = types.ModuleType("dbruntime", "The Databricks runtime's namespace, as this server provides it.")
    module.UserNamespaceInitializer = UserNamespaceInitializer
    return module


FUSE_PREFIXES = ("/Volumes/", "/Workspace/", "/dbfs/")


def fuse_open(real_open):
    """``real_open`` that also reads ``/Volumes/...`` (and ``/Workspace``, ``/dbfs``) paths as
    through Databricks' FUSE mounts. The roots are loaded on the first such path: other tasks pay
    one prefix test per ``open``. Outside a task run of this server: ``real_open`` itself."""
    if not os.environ.get("LAKEFLOW_FS_ROOTS") or getattr(real_open, "_lakeflow_mapped", False):
        return real_open
    mapped_open = []

    def open(file, *args, **kwargs):  # noqa: A001
        if isinstance(file, str) and file.startswith(FUSE_PREFIXES) or (
                isinstance(file, os.PathLike) and str(os.fspath(file)).startswith(FUSE_PREFIXES)):
            if not mapped_open:
                roots = _sibling("workspace_paths").Roots.from_env(os.environ.get("LAKEFLOW_FS_ROOTS"))
                mapped_open.append(_sibling("dbutils_fs").mapping_open(roots, real_open))
            return mapped_open[0](file, *args, **kwargs)
        return real_open(file, *args, **kwargs)

    open._lakeflow_mapped = True
    open.__doc__ = real_open.__doc__
    return open


def install(**kwargs):
    """Create a DBUtils, make it the builtin ``dbutils`` and what ``databricks.sdk.runtime`` hands
    out (with a NoSpark as its ``spark``; no builtin ``spark``: code that tests for one to build
    its own session must still find none); return it."""
    import builtins
    import io
    import sys

    builtins.dbutils = DBUtils(**kwargs)
    builtins.open = io.open = fuse_open(builtins.open)
    namespace = {"dbutils": builtins.dbutils, "spark": NoSpark(), "getArgument": builtins.dbutils.widgets.get}
    sys.modules["dbruntime"] = runtime_module(namespace)
    sys.modules.pop("databricks.sdk.runtime", None)  # imported before: read the namespace again
    return builtins.dbutils


__all__ = ["DBUtils", "InputWidgetNotDefined", "MAX_TASK_VALUE_BYTES", "install"]
