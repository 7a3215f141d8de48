"""``dbutils.fs`` in task processes, with Databricks' behaviour, on the directories that stand
in for DBFS, volumes and the workspace (workspace_paths.Roots). Standard library only; loaded
by file location on the first use of ``dbutils.fs``.

As on Databricks: a path without a scheme is a DBFS path unless it is under ``/Volumes`` or
``/Workspace``; ``file:/`` names a file of this machine; directories appear on write; ``ls``
names directories with a trailing ``/``; ``rm`` of a missing path returns False.
"""

import os
import shutil
from collections import namedtuple

FileInfo = namedtuple("FileInfo", ["path", "name", "size", "modificationTime"])
FileInfo.__module__ = "dbutils"


class FileSystem:
    """The object task code sees as ``dbutils.fs``."""

    def __init__(self, roots):
        self._roots = roots

    def ls(self, dir):  # noqa: A002 (Databricks' parameter name)
        path = self._local(dir)
        if not os.path.exists(path):
            raise FileNotFoundError(f"java.io.FileNotFoundException: File {dir} does not exist.")
        if not os.path.isdir(path):
            return [self._info(path)]
        with os.scandir(path) as entries:
            return sorted((self._info(entry.path) for entry in entries), key=lambda info: info.name)

    def mkdirs(self, dir):  # noqa: A002
        os.makedirs(self._local(dir), exist_ok=True)
        return True

    def put(self, file, contents, overwrite=False):
        path = self._local(file)
        if os.path.isdir(path):
            raise IsADirectoryError(f"{file} is a directory")
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"java.io.FileAlreadyExistsException: {file} already exists; "
                                  "pass overwrite=True to replace it")
        data = contents.encode("utf-8") if isinstance(contents, str) else bytes(contents)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        print(f"Wrote {len(data)} bytes.")
        return True

    def head(self, file, maxBytes=65536):  # noqa: N803
        path = self._local(file)
        if os.path.isdir(path):
            raise IsADirectoryError(f"{file} is a directory")
        with open(path, "rb") as f:
            return f.read(maxBytes).decode("utf-8", errors="replace")

    def cp(self, from_, to, recurse=False, **kwargs):
        source, target = self._pair(from_, to, recurse, kwargs)
        if os.path.isdir(source):
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
        return True

    def mv(self, from_, to, recurse=False, **kwargs):
        source, target = self._pair(from_, to, recurse, kwargs)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(source, target)
        return True

    def rm(self, dir, recurse=False):  # noqa: A002
        path = self._local(dir)
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            if recurse:
                shutil.rmtree(path)
            elif os.listdir(path):
                raise OSError(f"{dir} is a non-empty directory; pass recurse=True to remove it")
            else:
                os.rmdir(path)
        else:
            return False
        return True

    def mounts(self):
        return []

    def help(self, method=None):
        print("dbutils.fs: ls, mkdirs, put, head, cp, mv, rm on dbfs:/, /Volumes/..., /Workspace/... and file:/ paths")

    def _pair(self, from_, to, recurse, kwargs):
        from_ = kwargs.pop("from", from_)  # dbutils.fs.cp(from_=..., to=...) and Scala's name
        if kwargs:
            raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
        source, target = self._local(from_), self._local(to)
        if not os.path.exists(source):
            raise FileNotFoundError(f"java.io.FileNotFoundException: File {from_} does not exist.")
        if os.path.isdir(source) and not recurse:
            raise IsADirectoryError(f"{from_} is a directory; pass recurse=True to copy or move it")
        if os.path.isdir(target) and not os.path.isdir(source):
            target = os.path.join(target, os.path.basename(source))
        return source, target

    def _local(self, path):
        if not isinstance(path, str) or not path:
            raise TypeError(f"a path must be a non-empty string, not {path!r}")
        return self._roots.fs_path(path)

    def _info(self, local):
        info = os.stat(local)
        shown = self._roots.databricks_path(local)
        name = os.path.basename(local)
        if os.path.isdir(local):
            return FileInfo(shown.rstrip("/") + "/", name + "/", 0, int(info.st_mtime * 1000))
        return FileInfo(shown, name, info.st_size, int(info.st_mtime * 1000))


def mapping_open(roots, real_open):
    """``open`` that reads ``/Volumes``, ``/Workspace`` and ``/dbfs`` paths as Databricks' FUSE
    mounts do, from their roots (and makes a written file's directory, as a volume would have)."""

    def open(file, mode="r", *args, **kwargs):  # noqa: A001
        name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else None
        local = roots.mapped(name) if isinstance(name, str) and name.startswith("/") else None
        if local is not None:
            file = local
            if any(flag in mode for flag in "wax+"):
                os.makedirs(os.path.dirname(file), exist_ok=True)
        return real_open(file, mode, *args, **kwargs)

    open.__doc__ = real_open.__doc__
    return open
