"""The server's directories and the identity its task processes run as (read by settings.py).

- ``LAKEFLOW_HOME`` is the server's alone: 0700, its files 0600, created so from the start and
  tightened at every start (older servers left them world-readable). It holds the SQLite
  database (live session keys), the secret key and the admin password.
- ``LAKEFLOW_TASK_HOME`` is what tasks may use: 0711 (enter, not list), each attempt's
  directory (0700, owned by the task user) and the embedded DuckDB warehouse.
- The task user: tasks run as another OS user where the server can switch to one (it runs as
  root), so a job author cannot read or rewrite the server's files or act as the server.
"""

import os
import pwd
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
TASK_HOME_MODE = 0o711
DEFAULT_TASK_USER_AS_ROOT = "nobody"
# Never handed to tasks, even when LAKEFLOW_TASK_ENV names them: the server's own secrets.
SERVER_SECRETS = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LAKEFLOW_WAREHOUSES", "LAKEFLOW_ADMIN_PASSWORD",
                  "LAKEFLOW_SECRETS_KEY", "LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY")


@dataclass(frozen=True)
class TaskUser:
    """Who task processes run as. ``switch`` is False when they run as the server's own user."""

    name: str
    uid: int
    gid: int
    home: str
    switch: bool
    explicit: bool = True  # named by LAKEFLOW_TASK_USER, not the default for a root server
    why_not: str = ""  # why tasks do not switch although the server could


def task_user_notice(user: TaskUser) -> str:
    """What `serve` (and every cluster node) says at start about who task processes run as."""
    if user.switch:
        return (f"Task processes run as the OS user '{user.name}' (LAKEFLOW_TASK_USER): they cannot read "
                "the server's database, keys or passwords.")
    because = f" (not as '{DEFAULT_TASK_USER_AS_ROOT}': {user.why_not})" if user.why_not else ""
    return (f"WARNING: task processes run as '{user.name}', the server's own OS user{because}: every job "
            "author can read and change the server's database and keys, and so act as any user of this "
            "server. Run the server as root with LAKEFLOW_TASK_USER set to an unprivileged user to keep "
            "tasks apart.")


def keep_private(home: Path) -> None:
    """Create the server's home 0700 and make what is in it its owner's alone."""
    home.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _chmod_if_mine(home, PRIVATE_DIR_MODE)
    if os.lstat(home).st_uid != os.geteuid():
        return  # another user's (root's) home: nothing here for this process to tighten
    with os.scandir(home) as entries:
        for entry in entries:
            if entry.is_symlink():
                continue
            _chmod_if_mine(Path(entry.path), PRIVATE_DIR_MODE if entry.is_dir() else PRIVATE_FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write a new file that only its owner can read, with no moment at a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), PRIVATE_FILE_MODE)
        f.write(text)


def create_private_once(path: Path, text: str) -> None:
    """Write a new private file unless another process wrote one first: a link never replaces a
    file, so processes starting together on a new home all read the same text, whole. (The
    draft has a name of its own, mkstemp's, for each caller: threads of one process, or
    containers that are all pid 1, never write into each other's.)"""
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # whole on disk before it has its name
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)


def task_identity(name: str | None) -> TaskUser:
    """The user named by LAKEFLOW_TASK_USER (None: unset, "": the server's own)."""
    server = pwd.getpwuid(os.geteuid())
    explicit = name is not None
    if name is None:
        name = DEFAULT_TASK_USER_AS_ROOT if os.geteuid() == 0 else ""
    if not name.strip():
        return TaskUser(server.pw_name, server.pw_uid, server.pw_gid, server.pw_dir, switch=False)
    try:
        entry = pwd.getpwuid(int(name)) if name.strip().isdigit() else pwd.getpwnam(name.strip())
    except (KeyError, ValueError):
        raise ImproperlyConfigured(f"LAKEFLOW_TASK_USER={name}: there is no such user on this machine "
                                   "(create one, e.g. `useradd --system --create-home lakeflow-task`)") from None
    if entry.pw_uid == 0:
        raise ImproperlyConfigured("LAKEFLOW_TASK_USER must not be root: tasks would act as the server")
    if entry.pw_uid == os.geteuid():
        return TaskUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, switch=False)
    # Whether this process may switch is asked where tasks start (usable_task_user): web
    # processes share these settings and never start one.
    return TaskUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, switch=True, explicit=explicit)


def usable_task_user(user: TaskUser, python: str, workspace_root: Path) -> TaskUser:
    """``user``, once shown able to start the task Python in the workspace as task processes do.

    When it cannot (the interpreter lives under /root, the workspace is the server's alone), a
    user named by LAKEFLOW_TASK_USER is a configuration error; the default for a root server
    gives way to the server's own user, and the start-up notice says why."""
    import subprocess

    if not user.switch:
        return user
    if os.geteuid() != 0:
        server = pwd.getpwuid(os.geteuid()).pw_name
        raise ImproperlyConfigured(
            f"LAKEFLOW_TASK_USER={user.name}: this server runs as {server}, which cannot start processes as "
            "another user. Run the cluster as root (it starts tasks as that user), or leave "
            "LAKEFLOW_TASK_USER empty (tasks then run as the server's own user).")
    try:
        probe = subprocess.run([python, "-c", "pass"], cwd=workspace_root, user=user.uid, group=user.gid,
                               extra_groups=[], env={"PATH": os.environ.get("PATH", "")},
                               capture_output=True, timeout=60)
        problem = "" if probe.returncode == 0 else probe.stderr.decode(errors="replace").strip()[-300:]
    except OSError as exc:  # cannot execute the interpreter or enter the workspace
        problem = f"{exc.strerror}: {exc.filename}"
    if not problem:
        return user
    why = (f"the OS user '{user.name}' cannot start {python} in {workspace_root} ({problem}); make both "
           f"readable to it, or set LAKEFLOW_TASK_PYTHON to an interpreter it can run")
    if user.explicit:
        raise ImproperlyConfigured(f"LAKEFLOW_TASK_USER={user.name}: {why}")
    server = pwd.getpwuid(os.geteuid())
    return TaskUser(server.pw_name, server.pw_uid, server.pw_gid, server.pw_dir, switch=False, explicit=False,
                    why_not=why)


def task_environment_names(names: list[str]) -> tuple[str, ...]:
    refused = sorted(set(names) & set(SERVER_SECRETS))
    if refused:
        raise ImproperlyConfigured(f"LAKEFLOW_TASK_ENV names the server's own secrets ({', '.join(refused)}): "
                                   "tasks never see them; give a task what it needs through the job's "
                                   "environment_variables instead")
    return tuple(names)


WAREHOUSE_FILES = ("warehouse.duckdb", "warehouse.duckdb.wal", "warehouse.duckdb.lock")


def prepare_task_home(home: Path, task_home: Path, user: TaskUser) -> None:
    """The tasks' area: enterable but not listable; the warehouse belongs to the task user."""
    task_home.mkdir(mode=TASK_HOME_MODE, parents=True, exist_ok=True)
    _chmod_if_mine(task_home, TASK_HOME_MODE)
    (task_home / "attempts").mkdir(mode=TASK_HOME_MODE, exist_ok=True)
    warehouse = embedded_warehouse(task_home).parent
    warehouse.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    if os.geteuid() not in (0, os.lstat(warehouse).st_uid):
        return  # a web process of another user than the cluster's: the cluster hands it over
    for name in WAREHOUSE_FILES[:2]:  # a warehouse an older server kept in LAKEFLOW_HOME moves here
        old, new = home / name, warehouse / name
        if old.exists() and not new.exists():
            try:
                shutil.move(old, new)  # a rename, or a copy across file systems
            except FileNotFoundError:  # another process moved it first
                pass
    give_to(warehouse, user)  # task_home is the server's: nobody else can swap this directory
    for name in WAREHOUSE_FILES:  # tasks open and lock these; they may have replaced them since
        _give_file_to(warehouse / name, user)


SERVER_ENTRIES_OF_TASK_HOME = ("attempts", "environments", "warehouse")
"""What the server keeps in LAKEFLOW_TASK_HOME: no Databricks root may lie in (or be) one of them."""


def fs_root_problem(name: str, root: Path, home: Path, task_home: Path) -> str | None:
    """Why ``root`` cannot be where /Volumes, /Workspace or dbfs:/ live, or None: it would show
    tasks the server's own files (LAKEFLOW_HOME, other attempts, environments, the warehouse)."""
    root, home, task_home = (Path(os.path.realpath(p)) for p in (root, home, task_home))
    if root == home or home.is_relative_to(root) or root.is_relative_to(home):
        return f"{name}={root} overlaps LAKEFLOW_HOME ({home}), the server's own files"
    if task_home.is_relative_to(root):
        return f"{name}={root} contains LAKEFLOW_TASK_HOME ({task_home}), where attempts keep their files"
    if root.is_relative_to(task_home):
        parts = root.relative_to(task_home).parts
        if not parts or parts[0] in SERVER_ENTRIES_OF_TASK_HOME:
            return f"{name}={root} is among the server's directories in LAKEFLOW_TASK_HOME ({task_home})"
    return None


def prepare_fs_roots(roots, user: TaskUser, home: Path, task_home: Path) -> None:
    """The directories of /Volumes, /Workspace and dbfs:/ (made here unless the operator gave
    existing ones). Volumes and DBFS hold data: the task user's to write. /Workspace holds code
    that runs as jobs' run-as identities: the server's, readable by tasks and not writable (where
    tasks run as another user), so one job cannot rewrite another's code."""
    for name, root, writable in (("LAKEFLOW_VOLUMES_DIR", roots.volumes, True),
                                 ("LAKEFLOW_WORKSPACE_FILES_DIR", roots.workspace, False),
                                 ("LAKEFLOW_DBFS_DIR", roots.dbfs, True)):
        problem = fs_root_problem(name, Path(root), home, task_home)
        if problem:
            raise ImproperlyConfigured(problem)
        path = Path(root)
        if not path.exists():
            path.mkdir(mode=PRIVATE_DIR_MODE if writable else 0o755, parents=True, exist_ok=True)
            if writable:
                give_to(path, user)
        elif not writable and Path(os.path.realpath(path)).is_relative_to(os.path.realpath(task_home)):
            _take_back(path, user)  # an earlier version handed our default /Workspace to the task user


def _take_back(path: Path, user: TaskUser) -> None:
    """The directory the server's again (its contents stay as they are), 0755."""
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode) and user.switch and os.geteuid() == 0 and info.st_uid == user.uid:
        os.chown(path, 0, 0, follow_symlinks=False)
        os.chmod(path, 0o755)


def _give_file_to(path: Path, user: TaskUser) -> None:
    """Hand over a file in a directory the task user controls: through a descriptor (no symlink
    followed, no FIFO waited on), a regular file with one link, owned by the server or the user."""
    if not (user.switch and os.geteuid() == 0):
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # absent, or a symlink: nothing of ours to hand over
        return
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_uid in (0, user.uid):
            os.fchown(fd, user.uid, user.gid)
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def give_to(path: Path, user: TaskUser, mode: int = PRIVATE_DIR_MODE) -> None:
    """Hand a directory the server made, in a directory only the server can change, to the task
    user (only possible, and needed, as root)."""
    info = os.lstat(path)
    if user.switch and os.geteuid() == 0 and info.st_uid != user.uid:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    if os.geteuid() in (0, info.st_uid) and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


def embedded_warehouse(task_home: Path) -> Path:
    """The default DuckDB warehouse, in the tasks' area: tasks open it."""
    return task_home / "warehouse" / "warehouse.duckdb"


def _chmod_if_mine(path: Path, mode: int) -> None:
    info = os.lstat(path)
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
