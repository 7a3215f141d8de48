"""Build a task environment with ``uv`` (in the worker; standard library only).

An environment is a virtualenv in its own directory, named by the hash of what it installs.
It is built in a temporary sibling directory and renamed into place only once every install
step succeeded, so a directory with the final name is always complete: a half-built or failed
environment is never used, and a crash mid-build leaves only a temporary directory behind.
Built as the task user, it is the server's (owners, modes) before it is renamed into place.

The environment sees the packages of the server's task interpreter (``LAKEFLOW_TASK_PYTHON``)
after its own: a ``.pth`` file adds that interpreter's site directories (with their own ``.pth``
files) behind the environment's, so task code keeps what the default environment has (as
Databricks' serverless base environment does) and a declared dependency overrides the base's
copy. (``--system-site-packages`` would expose only the *base* interpreter's site-packages when
the task interpreter is itself a virtualenv.)
"""

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from runs.executors.errors import LaunchError
from runs.executors.files import open_task_file


BASE_PTH = "_lakeflow_base.pth"
REQUIREMENTS = "requirements.txt"  # beside the environment, not in it
COMPLETE = "lakeflow-environment.json"  # written last, before the rename
MAX_ERROR_CHARS = 4000
MAX_LIBRARY_BYTES = 2**40  # a wheel or -r file is hashed whole; only FIFOs and devices are refused


class BuildFailed(Exception):
    """The installer refused; ``message`` is its own error, naming the requirement."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class BuildStopped(BuildFailed):
    """``keep_going()`` said stop (the task was canceled): not the spec's fault."""


@dataclass(frozen=True)
class Resolved:
    lines: list  # requirement lines with local paths made absolute (mapped into the task roots)
    files: dict  # local path -> sha256 of its content ("absent": the installer will say so)


def resolve_lines(lines, files) -> Resolved:
    """Map the local paths (wheels, ``-r`` files) of ``lines`` through ``files`` (a TaskFiles:
    the workspace root, the Databricks roots, never the server's own directories)."""
    resolved, fingerprints = [], {}
    for line in lines:
        if line.kind == "requirement":
            resolved.append(line.value)
            continue
        given = line.value[len("file://"):] if line.value.startswith("file://") else line.value
        what = "requirements file" if line.kind == "requirements" else "library"
        path = files.locate(os.path.expanduser(given), what)
        fingerprints[path] = fingerprint(path)
        resolved.append(f"-r {path}" if line.kind == "requirements" else path)
    return Resolved(resolved, fingerprints)


def fingerprint(path):
    """The content hash of a local file (a directory: its name only; the installer reads it).

    The file may lie in a tree every task can write (a volume): it is opened without following a
    symlink and without waiting on a FIFO, and must be a regular file."""
    try:
        with open_task_file(path, max_bytes=MAX_LIBRARY_BYTES) as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        return "absent"  # the installer says so, naming it
    except OSError as exc:
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                return "directory"
        except OSError:
            pass
        raise LaunchError("INVALID_RUN_CONFIGURATION",
                          f"library {path} cannot be installed ({exc.strerror or exc}): a wheel or requirements file "
                          "must be a regular file") from None


def environment_python(directory):
    return str(Path(directory) / "bin" / "python")


def is_built(directory):
    return (Path(directory) / COMPLETE).is_file()


def build_environment(directory, lines, *, python, uv, log, cache_dir, user=None,
                      keep_going=lambda: True, poll_seconds=1.0, timeout_seconds=3600):
    """Build the environment of ``lines`` at ``directory``; raise BuildFailed with uv's error (or
    with what could not be written: a full disk, a permission).

    ``cache_dir`` is uv's cache (None: none kept); ``log`` a binary file for the installer's
    output; ``keep_going()`` is called about every ``poll_seconds`` while uv runs and between
    the steps after it (heartbeats; False stops the build, e.g. a cancel). ``user`` (uid, gid)
    runs uv as the task user: package build scripts never run as the server.

    The build happens in ``.<key>.<nonce>.building/env``; its parent is the server's and, once
    uv's process group is gone, closed to the task user; only then is the tree made the server's
    (owners, and no group or other write) without following a symlink, so that what ships is
    what the installer made."""
    directory = Path(directory)
    if is_built(directory):
        return
    work = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.building")
    building = work / "env"
    try:
        directory.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # enterable, not listable
        # While uv runs as the task user it must reach `env` (and its temporary files); it can
        # list nothing here and write nothing but those.
        work.mkdir(mode=0o700)
        os.chmod(work, 0o711 if user is not None else 0o700)
        temporary = work / "tmp"
        for made, mode in ((building, 0o755), (temporary, 0o700)):
            made.mkdir(mode=mode)
            os.chmod(made, mode)  # whatever the umask
            if user is not None:
                os.chown(made, user.uid, user.gid)
        requirements = work / REQUIREMENTS  # the server's: uv reads it, nothing else may change it
        requirements.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        os.chmod(requirements, 0o644)
        steps = dict(log=log, cache_dir=cache_dir, temporary=temporary, user=user, keep_going=keep_going,
                     poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)
        _run([uv, "venv", "--relocatable", "--python", python, "--no-project", str(building)], **steps)
        if lines:
            _run([uv, "pip", "install", "--python", environment_python(building), "--no-progress",
                  "-r", str(requirements)], **steps)
        os.chmod(work, 0o700)  # uv's process group is gone: the task user cannot reach the tree again
        _go_on(keep_going)
        _keep_for_server(building, python, keep_going)
        _go_on(keep_going)
        _add_base_site_packages(building, python, keep_going, poll_seconds)
        _write_new(building / COMPLETE, json.dumps({"lines": list(lines), "python": python, "built_at": time.time()}))
        if os.path.lexists(directory) and not is_built(directory):
            remove_environment(directory)  # a stray directory without the marker (a partial copy, a restore)
        try:
            os.rename(building, directory)
        except OSError:
            if not is_built(directory):  # another host sharing the directory finished first: fine
                raise
    except BuildFailed:
        raise
    except OSError as exc:  # a full disk, a permission, a directory in the way
        raise BuildFailed(f"The environment could not be written: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _go_on(keep_going):
    if not keep_going():
        raise BuildStopped("The environment build was stopped: the task was canceled")


def _keep_for_server(top, python, keep_going):
    """Make the built tree the server's: owner and group, modes without group or other write (nor
    set-id bits), directory by directory, each one changed before it is listed (so nothing can be
    added to it unseen). Symlinks are never followed, and may point only inside the environment
    or at its interpreter; anything but directories, regular files and such symlinks fails the
    build."""
    uid, gid = os.geteuid(), os.getegid()
    real_top = os.path.realpath(top)
    interpreter = os.path.realpath(python)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    pending = [(os.open(top, flags | os.O_DIRECTORY), str(top))]
    try:
        while pending:
            dir_fd, path = pending.pop()
            try:
                _go_on(keep_going)
                _settle(dir_fd, uid, gid)
                with os.scandir(dir_fd) as entries:
                    names = [entry.name for entry in entries]
                for name in names:
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if stat.S_ISLNK(info.st_mode):
                        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
                        target = os.path.realpath(os.path.join(path, os.readlink(name, dir_fd=dir_fd)))
                        if target != interpreter and not _inside(target, real_top):
                            raise BuildFailed(f"The build left a symlink out of the environment: "
                                              f"{os.path.join(path, name)} -> {target}")
                    elif stat.S_ISDIR(info.st_mode):
                        pending.append((os.open(name, flags | os.O_DIRECTORY, dir_fd=dir_fd), os.path.join(path, name)))
                    else:
                        fd = os.open(name, flags, dir_fd=dir_fd)
                        try:
                            if not stat.S_ISREG(os.fstat(fd).st_mode):
                                raise BuildFailed(f"The build left {os.path.join(path, name)}, which is not a regular file")
                            _settle(fd, uid, gid)
                        finally:
                            os.close(fd)
            finally:
                os.close(dir_fd)
    finally:
        for dir_fd, _ in pending:
            os.close(dir_fd)


def _settle(fd, uid, gid):
    info = os.fstat(fd)
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.fchown(fd, uid, gid)
    if stat.S_IMODE(info.st_mode) != stat.S_IMODE(info.st_mode) & 0o755:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) & 0o755)


def _inside(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _write_new(path, text):
    """A file of the server's in a directory it keeps: whatever was at that name goes first."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, 0o644)
        f.write(text)


def remove_environment(directory):
    """Rename first, then delete: a task never sees a half-deleted environment as built."""
    directory = Path(directory)
    doomed = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.removing")
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


# The task interpreter's site directories, and where a virtualenv over it keeps its packages
# (relative to the environment): asked of the server's own interpreter, never of the one in the
# environment (its .pth files are the job author's code, and the server may run as root).
_ASK_LAYOUT = (
    "import json, site, sys, sysconfig\n"
    "scheme = 'venv' if 'venv' in sysconfig.get_scheme_names() else 'posix_prefix'\n"
    "own = sysconfig.get_path('purelib', scheme, vars={'base': '/ENV', 'platbase': '/ENV'})\n"
    "print(json.dumps({'base': [p for p in site.getsitepackages() if p in sys.path], 'own': own[len('/ENV/'):]}))\n")
_layouts = {}


def base_layout(python, keep_going=lambda: True, poll_seconds=1.0, timeout_seconds=60):
    """{"base": the interpreter's site directories, "own": an environment's, relative to it};
    asked once per interpreter and process, beating while it answers."""
    if python not in _layouts:
        try:
            process = subprocess.Popen([python, "-I", "-c", _ASK_LAYOUT], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        except OSError as exc:
            raise BuildFailed(f"Could not read the site directories of {python}: {exc}") from None
        deadline = time.monotonic() + timeout_seconds
        try:
            while True:
                try:
                    out, err = process.communicate(timeout=poll_seconds)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        raise BuildFailed(f"{python} did not say where its site directories are "
                                          f"within {timeout_seconds} seconds") from None
                    _go_on(keep_going)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        try:
            if process.returncode != 0:
                raise ValueError(err.strip()[-500:])
            _layouts[python] = json.loads(out)
        except ValueError as exc:
            raise BuildFailed(f"Could not read the site directories of {python}: {exc}") from None
    return _layouts[python]


def _add_base_site_packages(environment, base_python, keep_going, poll_seconds):
    """Append the task interpreter's site directories after the environment's own."""
    layout = base_layout(base_python, keep_going, poll_seconds)
    own = Path(environment) / layout["own"]
    real = os.path.realpath(own)
    if not os.path.isdir(real) or not _inside(real, os.path.realpath(environment)):
        raise BuildFailed(f"The environment {environment} has no site directory {layout['own']}")
    # addsitedir, not a bare path: the base's own .pth files (editable installs, hooks) work too.
    _write_new(Path(real, BASE_PTH), "".join(f"import site; site.addsitedir({path!r})\n"
                                             for path in layout["base"] if os.path.realpath(path) != real))


def _run(argv, *, log, cache_dir, temporary, user, keep_going, poll_seconds, timeout_seconds):
    log.write(("$ " + " ".join(argv[1:]) + "\n").encode())
    log.flush()
    env = {"PATH": os.environ.get("PATH", os.defpath), "UV_NO_CONFIG": "1", "NO_COLOR": "1",
           "UV_PYTHON_DOWNLOADS": "never", "TMPDIR": str(temporary)}
    # None: a throwaway cache (in TMPDIR, this build's own). A cache shared between builds that run
    # as the task user would be the task user's to change, and so every environment built after.
    env.update({"UV_CACHE_DIR": str(cache_dir), "HOME": str(cache_dir)} if cache_dir is not None
               else {"UV_NO_CACHE": "1", "HOME": "/nonexistent"})
    env.update(index_variables(os.environ))
    as_user = {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}
    if not keep_going():  # canceled since the last step
        raise BuildStopped("The environment build was stopped: the task was canceled")
    output = _OutputTail()
    try:
        # umask 022: whoever the server's umask leaves out, the task user must read what uv writes.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True, umask=0o022, **as_user)
    except OSError as exc:  # no uv there (LAKEFLOW_UV), or not runnable
        raise BuildFailed(f"Could not start {argv[0]}: {exc}") from None
    deadline = time.monotonic() + timeout_seconds
    try:
        os.set_blocking(process.stdout.fileno(), False)
        while True:
            _pump(process.stdout, log, output)
            try:
                process.wait(timeout=poll_seconds)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise BuildFailed(f"The environment build took longer than {timeout_seconds} seconds")
            if not keep_going():
                raise BuildStopped("The environment build was stopped: the task was canceled")
        _pump(process.stdout, log, output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        try:  # and whatever uv (or a build script) left running in its group
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.stdout.close()
    if process.returncode != 0:
        raise BuildFailed(output.error() or f"{argv[1]} exited with code {process.returncode}")


PASSED_TO_UV = ("UV_INDEX", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX", "UV_FIND_LINKS", "UV_NATIVE_TLS",
                "UV_INSECURE_HOST", "UV_HTTP_TIMEOUT", "UV_OFFLINE", "SSL_CERT", "HTTP_PROXY", "HTTPS_PROXY",
                "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
# uv reads none of pip's settings: an operator's pip mirror (in variables) serves uv too unless
# uv has its own. (pip.conf files are not read: set UV_* for those.)
PIP_TO_UV = {"PIP_INDEX_URL": "UV_DEFAULT_INDEX", "PIP_EXTRA_INDEX_URL": "UV_INDEX",
             "PIP_FIND_LINKS": "UV_FIND_LINKS", "PIP_CERT": "SSL_CERT_FILE"}


def index_variables(environ):
    """The server's variables that say where uv finds packages and how it reaches them."""
    found = {name: value for name, value in environ.items() if name.startswith(PASSED_TO_UV)}
    given = set(found) | ({"UV_DEFAULT_INDEX"} if "UV_INDEX_URL" in found else set()) | (
        {"UV_INDEX"} if "UV_EXTRA_INDEX_URL" in found else set())
    for pip_name, uv_name in PIP_TO_UV.items():
        if environ.get(pip_name) and uv_name not in given:
            found[uv_name] = environ[pip_name]
    return found


def _pump(stream, log, output):
    while True:
        try:
            data = stream.read(65536)
        except BlockingIOError:
            return
        if not data:  # None: nothing more for now; b"": the end
            return
        log.write(data)
        log.flush()
        output.add(data)


class _OutputTail:
    """The end of the installer's output: its error is the last thing it says."""

    def __init__(self):
        self.data = b""

    def add(self, data):
        self.data = (self.data + data)[-MAX_ERROR_CHARS * 4:]

    def error(self):
        text = self.data.decode("utf-8", errors="replace").strip()
        at = text.find("error:")  # uv's error block: "error: ...", then its causes
        found = text[at:] if at >= 0 else text
        return found[-MAX_ERROR_CHARS:].strip()

