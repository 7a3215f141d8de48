"""Build a task environment with ``uv`` (in the worker; standard library only).

An environment is a virtualenv in its own directory, named by the hash of what it installs.
It is built in a temporary sibling directory and renamed into place only once every install
step succeeded, so a directory with the final name is always complete: a half-built or failed
environment is never used, and a crash mid-build leaves only a temporary directory behind.

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
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from jobs.spec.environments import Line


BASE_PTH = "_lakeflow_base.pth"
REQUIREMENTS = "lakeflow-requirements.txt"
COMPLETE = "lakeflow-environment.json"  # written last, before the rename
MAX_ERROR_CHARS = 4000


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
    """The content hash of a local file (a directory: its name only; the installer reads it)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except IsADirectoryError:
        return "directory"
    except OSError:
        return "absent"


def environment_python(directory):
    return str(Path(directory) / "bin" / "python")


def is_built(directory):
    return (Path(directory) / COMPLETE).is_file()


def build_environment(directory, lines, *, python, uv, log, cache_dir, user=None,
                      keep_going=lambda: True, poll_seconds=1.0, timeout_seconds=3600):
    """Build the environment of ``lines`` at ``directory``; raise BuildFailed with uv's error.

    ``cache_dir`` is uv's cache (None: none kept); ``log`` a binary file for the installer's
    output; ``keep_going()`` is called about every ``poll_seconds`` while uv runs (heartbeats;
    False stops the build, e.g. a cancel). ``user`` (uid, gid) runs uv as the task user: package
    build scripts never run as the server.
    """
    directory = Path(directory)
    if is_built(directory):
        return
    building = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.building")
    directory.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # enterable, not listable
    try:
        building.mkdir(mode=0o755)
        os.chmod(building, 0o755)  # whatever the umask: the task user runs it
        if user is not None:
            os.chown(building, user.uid, user.gid)
        _run([uv, "venv", "--relocatable", "--python", python, "--no-project", str(building)],
             log=log, cache_dir=cache_dir, user=user, keep_going=keep_going, poll_seconds=poll_seconds,
             timeout_seconds=timeout_seconds)
        venv_python = environment_python(building)
        requirements = building / REQUIREMENTS
        requirements.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        os.chmod(requirements, 0o644)  # uv may run as the task user
        if lines:
            _run([uv, "pip", "install", "--python", venv_python, "--no-progress", "-r", str(requirements)],
                 log=log, cache_dir=cache_dir, user=user, keep_going=keep_going, poll_seconds=poll_seconds,
                 timeout_seconds=timeout_seconds)
        _add_base_site_packages(venv_python, python)
        if user is not None:  # built as the task user; kept by the server: no task can change it
            _own(building, os.geteuid(), os.getegid())
        (building / COMPLETE).write_text(json.dumps({"lines": list(lines), "python": python,
                                                     "built_at": time.time()}), encoding="utf-8")
        os.chmod(building / COMPLETE, 0o644)
        try:
            os.rename(building, directory)
        except OSError:
            if not is_built(directory):  # another host sharing the directory finished first: fine
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _own(top, uid, gid):
    for parent, directories, files in os.walk(top):
        for name in (*directories, *files):
            os.lchown(os.path.join(parent, name), uid, gid)
    os.lchown(top, uid, gid)


def remove_environment(directory):
    """Rename first, then delete: a task never sees a half-deleted environment as built."""
    directory = Path(directory)
    doomed = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.removing")
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _add_base_site_packages(venv_python, base_python):
    """Append the task interpreter's site directories after the environment's own."""
    ask = "import json, site, sys; print(json.dumps([p for p in site.getsitepackages() if p in sys.path]))"
    try:
        base = json.loads(subprocess.run([base_python, "-I", "-c", ask], capture_output=True, text=True,
                                         check=True, timeout=60).stdout)
        own = json.loads(subprocess.run([venv_python, "-I", "-c", ask], capture_output=True, text=True,
                                        check=True, timeout=60).stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise BuildFailed(f"Could not read the site directories of {base_python}: {exc}") from None
    if not own:
        raise BuildFailed(f"The environment's interpreter {venv_python} has no site directory")
    # addsitedir, not a bare path: the base's own .pth files (editable installs, hooks) work too.
    Path(own[0], BASE_PTH).write_text("".join(f"import site; site.addsitedir({path!r})\n"
                                              for path in base if path not in own), encoding="utf-8")
    os.chmod(Path(own[0], BASE_PTH), 0o644)


def _run(argv, *, log, cache_dir, user, keep_going, poll_seconds, timeout_seconds):
    log.write(("$ " + " ".join(argv[1:]) + "\n").encode())
    log.flush()
    env = {"PATH": os.environ.get("PATH", os.defpath), "UV_NO_CONFIG": "1", "NO_COLOR": "1",
           "UV_PYTHON_DOWNLOADS": "never"}
    # None: a throwaway cache. A cache shared between builds that run as the task user would be
    # the task user's to change, and so every environment built after from it.
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
            os.killpg(process.pid, 9)
            process.wait()
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

