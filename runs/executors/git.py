"""Git checkouts for tasks with ``source: GIT`` (in the worker; standard library and the git program).

- Each repository is fetched into a bare cache of its own per identity, ``<git home>/repos/<key>.git``
  with ``cache_key(url, identity)``: what one user's credential fetched is never in the cache of
  a fetch without it (one fetch at a time per cache: a file lock, as all workers of a host share
  the disk). Checkouts are named by the same key and the commit.
- ``resolve_commit`` turns a branch or tag into the commit it names now (fetching it first); a
  commit is fetched if the cache does not have it yet.
- ``build_tree`` writes the files of one commit (``git archive``, no ``.git``) into a temporary
  sibling directory and renames it into place once complete: a directory with the final name is
  always a whole commit. Built by the server, without group or other write: tasks read it.
- ``CheckoutFiles`` locates a task's file inside a checkout: relative paths only, never out of it
  through ``..`` or a symlink.

A credential (username, token) reaches git through an askpass helper that reads it from git's
environment: never on a command line, in a URL or in a log. Git's messages are returned with the
token and any password in a URL blanked out.
"""

import fcntl
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import LaunchError

MAX_MESSAGE_CHARS = 2000
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"  # never ext:: (it runs a command named in the URL)
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$LAKEFLOW_GIT_USERNAME" ;;
  *) printf '%s\\n' "$LAKEFLOW_GIT_TOKEN" ;;
esac
"""
_URL_PASSWORD = re.compile(r"(\w+://)[^/@\s]+@")


class GitFailed(LaunchError):
    """git could not fetch, resolve or check out: the attempt fails with git's own message."""

    def __init__(self, message, code="RESOURCE_NOT_FOUND"):
        super().__init__(code, message)


class GitStopped(GitFailed):
    """``keep_going()`` said stop (the task was canceled)."""


@dataclass(frozen=True)
class Credential:
    username: str
    token: str


def cache_key(url: str, identity: str, secret: bytes = b"") -> str:
    """The name of the cache (and the prefix of the checkouts) of ``url`` fetched as ``identity``
    ("anonymous", or whose credential is sent). Keyed with the server's ``secret``: task processes
    may enter the checkouts directory but not list it, nor work out another identity's names."""
    return hmac.new(secret, f"{identity}\n{url}".encode(), hashlib.sha256).hexdigest()[:32]


def repository_dir(git_home, cache) -> Path:
    return Path(git_home) / "repos" / f"{cache}.git"


def checkout_dir(git_home, cache, commit) -> Path:
    return Path(git_home) / "checkouts" / f"{cache}-{commit}"


def redacted(text: str, credential: Credential | None = None) -> str:
    text = _URL_PASSWORD.sub(r"\1***@", text)
    if credential is not None and credential.token:
        text = text.replace(credential.token, "***")
    return text


class _Git:
    """git commands on one bare cache, each bounded in time and stopped by ``keep_going()``."""

    def __init__(self, git_home, url, cache, *, log, credential=None, keep_going=lambda: True,
                 poll_seconds=1.0, timeout_seconds=600):
        self.home, self.url, self.log, self.credential = Path(git_home), url, log, credential
        self.keep_going, self.poll_seconds, self.timeout_seconds = keep_going, poll_seconds, timeout_seconds
        self.repo = repository_dir(git_home, cache)

    def env(self):
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(self.home), "GIT_TERMINAL_PROMPT": "0",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS, "LC_ALL": "C",
               "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                     "GIT_SSL_CAINFO", "SSL_CERT_FILE"):
            if name in os.environ:
                env[name] = os.environ[name]
        if self.credential is not None:
            env.update(GIT_ASKPASS=str(self.askpass()), LAKEFLOW_GIT_USERNAME=self.credential.username,
                       LAKEFLOW_GIT_TOKEN=self.credential.token)
        return env

    def askpass(self) -> Path:
        path = self.home / "askpass.sh"
        if not path.is_file():
            temporary = self.home / f".askpass.{uuid.uuid4().hex[:8]}"
            temporary.write_text(ASKPASS)
            os.chmod(temporary, 0o700)
            os.replace(temporary, path)
        return path

    def run(self, *args, stream=False, check=True, git_dir=True):
        argv = ["git", *(("--git-dir", str(self.repo)) if git_dir else ()), *args]
        self.log.write(("$ git " + redacted(" ".join(args), self.credential) + "\n").encode())
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       env=self.env(), start_new_session=True)
        except OSError as exc:
            raise GitFailed(f"Could not start git: {exc}") from None
        if stream:
            return process  # the caller reads its output (git archive)
        deadline = time.monotonic() + self.timeout_seconds
        try:
            while True:
                try:
                    out, err = process.communicate(timeout=self.poll_seconds)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        raise GitFailed(f"git {args[0]} took longer than {self.timeout_seconds} seconds") from None
                    if not self.keep_going():
                        raise GitStopped("The checkout was stopped: the task was canceled") from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        message = redacted(err.decode("utf-8", "replace").strip(), self.credential)
        if message:
            self.log.write((message + "\n").encode())
        if check and process.returncode != 0:
            raise GitFailed(message[-MAX_MESSAGE_CHARS:] or f"git {args[0]} exited with code {process.returncode}")
        return process.returncode, out.decode("utf-8", "replace").strip()

    def locked(self):
        """An exclusive lock on this cache (released when the returned file is closed)."""
        self.repo.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open(self.repo.with_name(self.repo.name + ".lock"), "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        return lock

    def ensure_repository(self):
        if not (self.repo / "HEAD").is_file():
            temporary = self.repo.with_name(f".{self.repo.name}.{uuid.uuid4().hex[:8]}")
            self.run("init", "--bare", "--quiet", str(temporary), git_dir=False)
            os.rename(temporary, self.repo)

    def fetch(self, *refspecs):
        self.run("fetch", "--quiet", "--no-tags", "--force", "--", self.url, *refspecs)

    def commit_of(self, name):
        code, out = self.run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
        return out if code == 0 and out else None


def resolve_commit(git_home, url, cache, kind, name, *, log, credential=None, keep_going=lambda: True,
                   poll_seconds=1.0) -> str:
    """The full hash of the commit that ``kind`` ("branch", "tag", "commit") ``name`` of ``url``
    names now, fetched into the cache ``cache``. GitFailed with git's message if there is none."""
    git = _Git(git_home, url, cache, log=log, credential=credential, keep_going=keep_going,
               poll_seconds=poll_seconds)
    with git.locked():
        git.ensure_repository()
        if kind == "commit":
            found = git.commit_of(name)
            if found is None:
                # Every branch and tag; then the commit itself (servers that allow it).
                git.fetch("+refs/heads/*:refs/lakeflow/heads/*", "+refs/tags/*:refs/lakeflow/tags/*")
                found = git.commit_of(name)
            if found is None:
                git.run("fetch", "--quiet", "--no-tags", "--", url, name)
                found = git.commit_of(name)
            if found is None:
                raise GitFailed(f"commit {name} is not in {redacted(url, credential)}")
            return found
        local = f"refs/lakeflow/{'heads' if kind == 'branch' else 'tags'}/{name}"
        remote = f"refs/{'heads' if kind == 'branch' else 'tags'}/{name}"
        try:
            git.fetch(f"+{remote}:{local}")
        except GitStopped:
            raise
        except GitFailed as exc:
            raise GitFailed(f"Could not fetch {kind} '{name}' of {redacted(url, credential)}: {exc.message}") from None
        found = git.commit_of(local)
        if found is None:
            raise GitFailed(f"{kind} '{name}' of {redacted(url, credential)} does not name a commit")
        return found


def build_tree(git_home, url, cache, commit, *, log, credential=None, keep_going=lambda: True,
               poll_seconds=1.0) -> Path:
    """The checkout of ``commit`` (already fetched into ``cache``, or fetched now), built if not there yet."""
    directory = checkout_dir(git_home, cache, commit)
    if directory.is_dir():
        return directory
    git = _Git(git_home, url, cache, log=log, credential=credential, keep_going=keep_going,
               poll_seconds=poll_seconds)
    if git.commit_of(commit) is None:  # a cache removed by hand since the commit was resolved
        resolve_commit(git_home, url, cache, "commit", commit, log=log, credential=credential,
                       keep_going=keep_going, poll_seconds=poll_seconds)
    directory.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # enterable, not listable
    building = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.building")
    try:
        building.mkdir(mode=0o755)
        if not keep_going():
            raise GitStopped("The checkout was stopped: the task was canceled")
        process = git.run("archive", "--format=tar", commit, stream=True)
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                # "tar": no absolute names, nothing outside the directory, no group/other write.
                archive.extractall(building, filter="tar")
        finally:
            process.stdout.close()
            error = process.stderr.read().decode("utf-8", "replace").strip()
            process.stderr.close()
            if process.wait() != 0:
                raise GitFailed(redacted(error, credential)[-MAX_MESSAGE_CHARS:] or "git archive failed")
        os.chmod(building, 0o755)
        try:
            os.rename(building, directory)
        except OSError:
            if not directory.is_dir():
                raise
    except tarfile.TarError as exc:
        raise GitFailed(f"The checkout of {commit} could not be written: {exc}") from None
    except OSError as exc:  # a full disk, a permission
        raise GitFailed(f"The checkout of {commit} could not be written: {exc}") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return directory


@dataclass(frozen=True)
class CheckoutFiles:
    """A task's files in a checkout (the TaskFiles interface the executors use: ``workspace_root``,
    ``locate``); ``fs_roots`` stay the server's, for dbutils.fs in the task."""

    workspace_root: Path
    fs_roots: object = None

    def locate(self, given: str, what: str) -> str:
        if os.path.isabs(given) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", given):
            if not _inside(os.path.normpath(given), str(self.workspace_root)):  # the executors join first
                raise LaunchError("INVALID_RUN_CONFIGURATION",
                                  f"{what} {given} must be relative to the repository root (source GIT)")
        path = os.path.normpath(os.path.join(self.workspace_root, given))
        real_root = os.path.realpath(self.workspace_root)
        if not _inside(path, str(self.workspace_root)) or not _inside(os.path.realpath(path), real_root):
            raise LaunchError("INVALID_RUN_CONFIGURATION",
                              f"{what} {given} leads outside the repository: paths may not leave it "
                              "with '..' or a symbolic link")
        return os.path.realpath(path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
