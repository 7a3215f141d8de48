"""Databricks paths on this machine: ``/Volumes/...``, ``/Workspace/...`` and ``dbfs:/...`` map to
directories of the server (LAKEFLOW_VOLUMES_DIR, LAKEFLOW_WORKSPACE_FILES_DIR, LAKEFLOW_DBFS_DIR).

Loaded into task processes by file location (for ``dbutils.fs`` and ``open``), and imported by
the server (task file fields, file-arrival URLs, table paths): standard library only.

- ``local_path``: how the server reads a job's path field. ``/Volumes/c/s/v/x``, ``/Workspace/x``,
  ``dbfs:/x`` and ``/dbfs/x`` (the FUSE view) map into their roots; ``file:/x`` and other absolute
  paths stay as they are.
- ``fs_path``: how ``dbutils.fs`` reads one: as on Databricks, a path without a scheme that is not
  under ``/Volumes`` or ``/Workspace`` is a DBFS path; ``file:/`` names a local file.

A mapped path that leaves its root (``..``, or a symlink pointing out) raises PathOutsideRoot.
"""

import os

ROOTS_ENV = "LAKEFLOW_FS_ROOTS"
"""The task process's roots: ``volumes``, ``workspace`` and ``dbfs`` directories joined by os.pathsep."""


class PathOutsideRoot(ValueError):
    pass


PathOutsideRoot.__module__ = "dbutils"


class Roots:
    """Where volumes, workspace files and DBFS live (a plain class: task processes load this
    module at start, and ``dataclasses`` costs more to import than the rest of it)."""

    __slots__ = ("volumes", "workspace", "dbfs")

    def __init__(self, volumes: str, workspace: str, dbfs: str):
        self.volumes, self.workspace, self.dbfs = str(volumes), str(workspace), str(dbfs)

    def __eq__(self, other):
        return isinstance(other, Roots) and self.to_env() == other.to_env()

    def __hash__(self):
        return hash(self.to_env())

    def __repr__(self):
        return f"Roots(volumes={self.volumes!r}, workspace={self.workspace!r}, dbfs={self.dbfs!r})"

    def to_env(self) -> str:
        return os.pathsep.join((self.volumes, self.workspace, self.dbfs))

    @classmethod
    def from_env(cls, value: str | None) -> "Roots | None":
        parts = (value or "").split(os.pathsep)
        return cls(*parts) if len(parts) == 3 and all(parts) else None

    def local_path(self, path: str) -> str:
        """The local path of a job's path field (absolute paths outside the Databricks roots stay)."""
        mapped = self.mapped(path)
        if mapped is not None:
            return mapped
        return file_uri_path(path) if path.startswith("file:") else path

    def fs_path(self, path: str) -> str:
        """The local path ``dbutils.fs`` means by ``path``: scheme-less paths default to DBFS."""
        if path.startswith("file:") or self.mapped(path) is not None:
            return self.local_path(path)
        if _has_scheme(path):
            raise ValueError(f"{path}: only dbfs:/, file:/, /Volumes and /Workspace paths are supported here")
        return self._inside(self.dbfs, path, path)

    def databricks_path(self, local: str) -> str:
        """How Databricks names a local file in a listing: ``dbfs:/Volumes/...``, ``dbfs:/...``,
        ``file:/Workspace/...``, or ``file:/...``."""
        for root, prefix in ((self.volumes, "dbfs:/Volumes"), (self.workspace, "file:/Workspace"), (self.dbfs, "dbfs:")):
            if _within(local, root):
                rest = os.path.relpath(local, root)
                return f"{prefix}/{'' if rest == '.' else rest}"
        return "file:" + local

    def root_of(self, local: str) -> str | None:
        """The root a mapped local path lies in (for reading it beneath that root)."""
        for root in (self.volumes, self.workspace, self.dbfs):
            if _within(local, root):
                return root
        return None

    def mapped(self, path: str) -> str | None:
        """The local path of a Databricks path (None for any other path)."""
        if path[:5].lower() == "dbfs:":  # a scheme is case-insensitive
            rest = path[len("dbfs:"):]
            if rest == "/Volumes" or rest.startswith("/Volumes/"):
                return self._inside(self.volumes, rest[len("/Volumes"):], path)
            return self._inside(self.dbfs, rest, path)
        for prefix, root in (("/Volumes", self.volumes), ("/Workspace", self.workspace), ("/dbfs", self.dbfs)):
            if path == prefix or path.startswith(prefix + "/"):
                return self._inside(root, path[len(prefix):], path)
        return None

    @staticmethod
    def _inside(root: str, rest: str, given: str) -> str:
        """``root`` joined with ``rest``, refused if ``..`` or a symlink leads out of ``root``."""
        joined = os.path.normpath(os.path.join(root, rest.lstrip("/")))
        if not _within(joined, root) or not _within(os.path.realpath(joined), os.path.realpath(root)):
            raise PathOutsideRoot(f"{given} leads outside its root {root}: paths may not leave it "
                                  "with '..' or a symbolic link")
        return joined


def _within(path: str, root: str) -> bool:
    root = root.rstrip(os.sep) or os.sep
    return path == root or path.startswith(root + os.sep) or root == os.sep


def _has_scheme(path: str) -> bool:
    head, sep, _ = path.partition(":")
    return bool(sep) and "/" not in head and len(head) > 1


def file_uri_path(uri: str) -> str:
    """The local path of a ``file:`` URI (``file:///data/in``, ``file:/data/in``); ValueError for
    another host's."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{uri} names another host; only local file: URIs are supported")
    return unquote(parts.path) or "/"
