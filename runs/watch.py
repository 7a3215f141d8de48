"""What file-arrival and table-update triggers look at on disk (standard library only).

- ``scan_directory``: the files under a watched directory, to compare with the previous scan;
- ``new_files``: the files that appeared between two scans (only new files fire, as in
  Databricks: rewriting an existing file does not);
- ``delta_table_version``: the latest commit of a Delta table stored at a local path.

Skipped when scanning, at any depth: names starting with ``.`` or ``_`` (hidden files, Spark's
``_SUCCESS``/``_committed_*``/``_temporary/``, ``_delta_log/``, ``.crc`` checksums, editors' and
rsync's temporary files: what Spark's own file sources ignore) and names ending in
``._COPYING_`` (``hdfs dfs -put`` in progress). Symlinked directories are not followed (no
loops, no escaping the watched tree); symlinked files are listed with their target's size and
time, and broken symlinks are skipped.
"""

import hashlib
import json
import os
import re
import stat
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from runs.executors.workspace_paths import file_uri_path

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_IN_PROGRESS_SUFFIX = "._COPYING_"


class WatchError(Exception):
    """A watched location that cannot be read; the message says what to fix."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def local_path(url: str, roots=None) -> str:
    """The local path of an absolute path or a ``file://`` URI (``file:///data/in``); with
    ``roots`` (workspace_paths.Roots), of a ``/Volumes``, ``/Workspace`` or ``dbfs:/`` path too."""
    if roots is not None:
        try:
            mapped = roots.mapped(url)
        except ValueError as exc:
            raise WatchError(str(exc)) from None
        if mapped is not None:
            return mapped
    parts = urlsplit(url)
    if parts.scheme == "file":
        try:
            path = file_uri_path(url)
        except ValueError:
            raise WatchError(f"{url}: file:// URLs must name a local path (file:///path), "
                             f"not host {parts.netloc!r}") from None
    elif parts.scheme:
        raise WatchError(f"{url}: only local paths and file:// URLs can be watched, "
                         f"not {parts.scheme}://")
    else:
        path = url
    if not os.path.isabs(path):
        raise WatchError(f"{url}: the path must be absolute")
    return path


# --- directories -------------------------------------------------------------------------------

class TooManyFiles(WatchError):
    """The watched tree holds more files than a scan may list."""


def scan_directory(root: str, max_files: int | None = None) -> dict[str, list[int]]:
    """Every file under ``root``, recursively: relative path -> [size, mtime_ns]. Stops with
    TooManyFiles past ``max_files``: a scan's time and memory stay bounded whatever the tree."""
    root = local_path(root)
    files = {}
    pending = [("", _list_root(root))]  # iterative: deep trees cannot hit the recursion limit
    while pending:
        prefix, entries = pending.pop()
        for entry in entries:
            if _is_ignored(entry.name):
                continue
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                subdirectory = _list_subdirectory(entry.path)
                if subdirectory is not None:
                    pending.append((relative + "/", subdirectory))
            else:
                _add_file(files, relative, entry)
                if max_files is not None and len(files) > max_files:
                    raise TooManyFiles(f"directory {root} holds more than {max_files:,} files, more than a "
                                       "file arrival trigger watches (LAKEFLOW_FILE_ARRIVAL_MAX_FILES): "
                                       "watch a narrower directory, or move processed files out")
    return files


def _is_ignored(name: str) -> bool:
    return name.startswith((".", "_")) or name.endswith(_IN_PROGRESS_SUFFIX)


def _list_root(root: str) -> list:
    try:
        with os.scandir(root) as entries:
            return list(entries)
    except FileNotFoundError:
        raise WatchError(f"directory {root} does not exist") from None
    except NotADirectoryError:
        raise WatchError(f"{root} is not a directory") from None
    except OSError as exc:
        raise WatchError(f"directory {root} cannot be read: {exc.strerror or exc}") from None


def _list_subdirectory(path: str) -> list | None:
    """Its entries; None when it vanished (or was replaced by a file) since it was listed."""
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        # Not skipped: files that silently never fire are worse than a trigger that says why.
        raise WatchError(f"directory {path} cannot be read: {exc.strerror or exc}") from None


def _add_file(files: dict, relative: str, entry) -> None:
    try:
        if not entry.is_file():  # follows a symlink to its target
            return
        stat = entry.stat()
    except OSError:  # deleted since listed, or a symlink to nowhere or somewhere unreadable
        return
    files[relative] = [stat.st_size, stat.st_mtime_ns]


def fingerprint(path: str) -> str:
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def fingerprints(paths) -> list[str]:
    """What a trigger keeps of the files it has seen: 8 bytes of a hash per path, sorted. A
    snapshot of 10,000 files is then about 190 KB, however long their names."""
    return sorted(map(fingerprint, paths))


def new_files(before, after: dict) -> list[str]:
    """Paths in ``after`` that ``before`` did not have, sorted. ``before`` is a listing (a dict
    of paths, as older servers kept it) or its fingerprints."""
    if isinstance(before, dict):
        return sorted(after.keys() - before.keys())
    seen = set(before)
    return sorted(path for path in after if fingerprint(path) not in seen)


# --- Delta tables ------------------------------------------------------------------------------

def delta_table_version(table_path: str) -> tuple[int, datetime] | None:
    """(latest committed version, its commit time in UTC), or None before the first commit.

    The version is the newest ``_delta_log/NNNNNNNNNNNNNNNNNNNN.json``; the time is its
    ``commitInfo.timestamp`` (epoch ms, written by the committing engine), else the file's mtime.
    """
    path = local_path(table_path)
    if not os.path.isdir(path):
        reason = "is not a directory" if os.path.exists(path) else "does not exist"
        raise WatchError(f"table path {path} {reason}")
    commit = _latest_commit_file(os.path.join(path, "_delta_log"))
    if commit is None:
        return None
    version, commit_path = commit
    return version, _commit_time(commit_path)


def _latest_commit_file(log_dir: str) -> tuple[int, str] | None:
    try:
        names = os.listdir(log_dir)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise WatchError(f"Delta log {log_dir} cannot be read: {exc.strerror or exc}") from None
    versions = [int(match[1]) for match in map(_COMMIT_FILE.match, names) if match]
    if not versions:
        return None
    version = max(versions)
    return version, os.path.join(log_dir, f"{version:020d}.json")


MAX_COMMIT_BYTES = 1024 * 1024  # commitInfo is the first action of a commit


def _commit_time(commit_path: str) -> datetime:
    # The clock reads this in its step: never a FIFO that blocks it, a symlink to /dev/zero, or
    # more than the start of a file that whoever can write the table may have made huge.
    try:
        fd = os.open(commit_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise OSError(0, "not a regular file")
            head = f.read(MAX_COMMIT_BYTES).decode("utf-8", "replace")
            mtime_ns = info.st_mtime_ns
    except OSError as exc:
        raise WatchError(f"Delta commit {commit_path} cannot be read: "
                         f"{exc.strerror or exc}") from None
    timestamp = _commit_info_timestamp(head.splitlines())
    if timestamp is not None:
        return _EPOCH + timedelta(milliseconds=timestamp)
    return _EPOCH + timedelta(microseconds=mtime_ns // 1000)


def _commit_info_timestamp(lines) -> int | None:
    """``commitInfo.timestamp`` from the commit's JSON lines (one action per line)."""
    for line in lines:
        try:
            action = json.loads(line)
        except ValueError:
            continue  # a line we cannot read does not hide the others
        info = action.get("commitInfo") if isinstance(action, dict) else None
        if isinstance(info, dict):
            timestamp = info.get("timestamp")
            is_epoch_ms = isinstance(timestamp, int) and not isinstance(timestamp, bool)
            return timestamp if is_epoch_ms else None
    return None


# --- scans off the clock's step ------------------------------------------------------------------

class BackgroundScans:
    """Directory scans on threads of the clock process, so a big tree never holds up the clock's
    step (schedules, retries, timeouts): a step asks for a trigger's listing, gets None while the
    scan runs, and the listing (or its WatchError) at a later step. Only the filesystem is read
    on these threads; what the listing means is decided in the step."""

    def __init__(self, workers: int = 2):
        self.workers, self.pool, self.running = workers, None, {}

    def listing(self, key, root: str, max_files: int):
        """The finished scan of ``root`` for ``key`` (a dict, or raises its WatchError), or None
        while it runs; a new scan starts whenever none is running for ``key``."""
        import concurrent.futures

        future = self.running.get(key)
        if future is None:
            if self.pool is None:
                self.pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="scan")
            self.running[key] = self.pool.submit(scan_directory, root, max_files)
            return None
        if not future.done():
            return None
        del self.running[key]
        return future.result()


class InlineScans:
    """The fast twin for unit tests: the scan runs in the step."""

    def listing(self, key, root: str, max_files: int):
        return scan_directory(root, max_files)
