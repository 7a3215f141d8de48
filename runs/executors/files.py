"""Files between the server and its task processes (in the worker and the web; standard library).

- ``TaskFiles.locate``: a task's own file (``python_file``, ``notebook_path``, ``sql_task``
  ``file.path``) resolves inside the workspace root or another allowed root, after symlinks and
  ``..``, and never inside the server's own directories. Errors name the path, never its content.
- ``open_task_file``/``read_task_file``: what a task process could have written (its result,
  values, log, executed notebook) is read by the server without following a symlink the task
  planted (the server may run as root) and only if it is a regular file of bounded size.
- ``create_for_server``: a file the server writes into an attempt's directory, never through a
  symlink left there.
"""

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LaunchError

MAX_REPORT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TaskFiles:
    workspace_root: Path
    other_roots: tuple = ()
    private: tuple = field(default_factory=tuple)  # LAKEFLOW_HOME, LAKEFLOW_TASK_HOME
    fs_roots: object = None  # workspace_paths.Roots: where /Volumes, /Workspace and dbfs:/ live

    def locate(self, given: str, what: str) -> str:
        """The real path of ``given`` (absolute, a Databricks path, or relative to the workspace
        root), if allowed. Databricks paths stay inside their roots, which tasks may use even
        where they lie in the tasks' area."""
        if self.fs_roots is not None:
            try:
                mapped = self.fs_roots.mapped(given)
            except ValueError as exc:
                raise LaunchError("INVALID_RUN_CONFIGURATION", f"{what} {exc}") from None
            if mapped is not None:
                return os.path.realpath(mapped)
        path = os.path.abspath(os.path.join(self.workspace_root, given))
        real = os.path.realpath(path)
        if any(_inside(real, os.path.realpath(private)) for private in self.private):
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"{what} {given} is among the server's own files, which tasks may not use")
        roots = [self.workspace_root, *self.other_roots]
        if not any(_inside(real, os.path.realpath(root)) for root in roots):
            where = " or ".join(str(root) for root in roots)
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"{what} {given} is outside the workspace root {where}: task files must live "
                              "there (LAKEFLOW_WORKSPACE_ROOT, LAKEFLOW_TASK_FILE_ROOTS)")
        return real


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def open_task_file(path: str, max_bytes: int = MAX_REPORT_BYTES):
    """A binary file object for a file a task could have written; OSError if it is a symlink, not
    a regular file, or larger than max_bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    f = os.fdopen(fd, "rb")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # a hard link to someone else's file
            raise OSError(f"{path} is not a regular file of its own")
        if info.st_size > max_bytes:
            raise OSError(f"{path} is larger than {max_bytes:,} bytes")
    except BaseException:
        f.close()
        raise
    return f


def read_task_file(path: str, max_bytes: int = MAX_REPORT_BYTES) -> bytes:
    with open_task_file(path, max_bytes) as f:
        return f.read(max_bytes + 1)[:max_bytes]


def read_beneath(root: str, path: str, max_bytes: int = MAX_REPORT_BYTES) -> bytes:
    """The bytes of ``path``, a file inside ``root``, opened one component at a time without
    following a symlink anywhere (a task may swap a directory for a link between a check and an
    open: here each directory is held open before the next name is looked up). OSError if a
    component is a symlink, the file is not a regular one of its own, or too large."""
    relative = os.path.relpath(os.path.normpath(path), os.path.normpath(root))
    if relative == os.curdir or relative.split(os.sep)[0] == os.pardir:
        raise OSError(errno.EINVAL, f"{path} is not inside {root}")
    *directories, name = relative.split(os.sep)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for directory in directories:
            inner = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = inner
        file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as f:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise OSError(errno.EINVAL, f"{path} is not a regular file of its own")
        if info.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{path} is larger than {max_bytes:,} bytes")
        return f.read(max_bytes + 1)[:max_bytes]


def create_for_server(path: str, flags: int = os.O_WRONLY | os.O_TRUNC, mode: int = 0o600) -> int:
    """A descriptor of ``path``, made anew by the server: whatever the task left at that name (a
    symlink to a file only the server may write) is removed first."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def append_for_server(path: str, mode: int = 0o600) -> int:
    """A descriptor to append to the server's file at ``path`` (an attempt's log), never through a
    symlink, a FIFO or a second link: whatever else the task left there is replaced by a new file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO nobody reads
            raise
    else:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            os.set_blocking(fd, True)  # the task process inherits it as its stdout
            return fd
        os.close(fd)
    return create_for_server(path, os.O_WRONLY | os.O_APPEND, mode)
