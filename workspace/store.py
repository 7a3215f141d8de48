"""The workspace's files on disk (LAKEFLOW_WORKSPACE_FILES_DIR), for the Workspace API.

The directory is the server's: tasks read it and cannot write it (lakeflow_site/home.py), so
only this module changes it. Every path is mapped through workspace_paths.Roots, which refuses
one that leaves the root by '..' or a symbolic link. Files are 0644 and directories 0755 (tasks,
another OS user, read them); a write is a temporary file renamed into place, so a reader never
sees half a file, and a write that must not overwrite is a hard link of that temporary file:
the link fails if the name exists, so of two such imports exactly one wins.
"""

import contextlib
import errno
import os
import shutil
import stat
import tempfile

from django.conf import settings

from runs.executors.workspace_paths import PathOutsideRoot
from workspace.rules import (
    MAX_IMPORT_BYTES,
    NOTEBOOK_EXTENSIONS,
    WorkspaceRefused,
    already_exists,
    export_content,
    invalid,
    not_found,
    notebook_language,
    plan_import,
    shown,
    stored_variants,
    without_extension,
    workspace_parts,
)

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
TEMPORARY_PREFIX = ".lakeflow-import-"  # never listed
HEAD_BYTES = 200


def root():
    return settings.LAKEFLOW_FS_ROOTS.workspace


def local(parts):
    """The local path of ``parts``; INVALID_PARAMETER_VALUE if it would leave the root."""
    try:
        return settings.LAKEFLOW_FS_ROOTS.mapped("/Workspace" + shown(parts))
    except PathOutsideRoot:
        raise invalid(f"{shown(parts)} leads outside the workspace through a symbolic link") from None


def head(path):
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


# --- finding objects ----------------------------------------------------------------------------


class Found:
    """A workspace object: its type, the names it is shown by and the local file or directory."""

    def __init__(self, object_type, parts, path, info, language=None):
        self.object_type, self.parts, self.path, self.info, self.language = object_type, parts, path, info, language

    def object_info(self, export_info=False):
        body = {"object_type": self.object_type, "path": shown(self.parts), "object_id": self.info.st_ino,
                "resource_id": str(self.info.st_ino), "modified_at": int(self.info.st_mtime * 1000)}
        if self.object_type == "FILE":
            body["size"] = self.info.st_size
        if self.language:
            body["language"] = self.language
            if export_info:
                body["repos_export_format"] = "JUPYTER" if self.path.lower().endswith(".ipynb") else "SOURCE"
        return body


def described(parts, path):
    """The object stored at ``path`` (named ``parts`` below the root), or None."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(info.st_mode):
        return Found("DIRECTORY", parts, path, info)
    if not stat.S_ISREG(info.st_mode):
        return None
    language = notebook_language(parts[-1], head(path)) if parts else None
    if language is None:
        return Found("FILE", parts, path, info)
    extension = next(e for e in NOTEBOOK_EXTENSIONS if parts[-1].lower().endswith(e))
    return Found("NOTEBOOK", (*parts[:-1], without_extension(parts[-1], extension)), path, info, language)


def find(parts):
    """The object named ``parts``: a directory, a file, or a notebook shown without its extension."""
    found = described(parts, local(parts))
    if found is not None or not parts:
        return found
    for variant in stored_variants(parts):
        found = described(variant, local(variant))
        if found is not None and found.object_type == "NOTEBOOK" and found.parts == parts:
            return found
    return None


def existing(parts):
    found = find(parts)
    if found is None:
        raise not_found(shown(parts))
    return found


def get_status(parts, export_info=False):
    return existing(parts).object_info(export_info)


def list_directory(parts, notebooks_modified_after=None):
    found = existing(parts)
    if found.object_type != "DIRECTORY":
        return [found.object_info()]  # as Databricks: a file lists as itself
    objects = []
    for name in sorted(os.listdir(found.path)):
        if name.startswith(TEMPORARY_PREFIX):
            continue
        try:
            entry = described((*parts, name), local((*parts, name)))  # a link leading out is not listed
        except WorkspaceRefused:
            continue
        if entry is None:
            continue
        info = entry.object_info()
        if notebooks_modified_after is not None and entry.object_type == "NOTEBOOK" \
                and info["modified_at"] <= notebooks_modified_after:
            continue
        objects.append(info)
    return objects


# --- changing them ------------------------------------------------------------------------------


def make_directories(parts):
    path = local(parts)
    conflict = first_non_directory(parts)
    if conflict is not None:
        raise already_exists(shown(conflict))
    try:
        os.makedirs(path, mode=DIRECTORY_MODE, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file appeared on the way meanwhile
        raise already_exists(shown(parts)) from None


def first_non_directory(parts):
    """The first of ``parts``' ancestors (or itself) that exists and is not a directory."""
    for end in range(1, len(parts) + 1):
        path = local(parts[:end])
        if os.path.lexists(path) and not os.path.isdir(path):
            return parts[:end]
    return None


def import_object(parts, content, fmt, language, overwrite, http_status_if_exists=400):
    """Store an import; returns the object's info. Parents are made as needed.

    With ``overwrite`` it replaces the file or notebook of its name, and whatever is stored under
    its disk name (a notebook `x` over a file `x.py`, a file `x.py` over a notebook `x`: a bundle's
    notebook that lost its header is a file the next deploy); without, either answers
    RESOURCE_ALREADY_EXISTS. A directory is never replaced."""
    planned = plan_import(parts, content, fmt, language)
    target = local(planned.stored)
    if planned.stored[:-1]:
        make_directories(planned.stored[:-1])
    current = find(planned.parts)
    if (current is not None and current.object_type == "DIRECTORY") or os.path.isdir(target):
        raise already_exists(shown(planned.parts), http_status_if_exists)
    if (current is not None or os.path.lexists(target)) and not overwrite:
        raise already_exists(shown(planned.parts), http_status_if_exists)
    temporary = write_temporary(os.path.dirname(target), planned.content)
    try:
        if overwrite:
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise already_exists(shown(planned.parts), http_status_if_exists) from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    if current is not None and current.path != target:
        # The object's other form (nb.ipynb replaced by nb.py); a racing delete removed it already.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(current.path)
    return existing(planned.parts).object_info()


def write_temporary(directory, content):
    fd, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(content)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def delete_object(parts, recursive):
    if not parts:
        raise invalid("The workspace root cannot be deleted")
    found = existing(parts)
    if found.object_type != "DIRECTORY":
        os.unlink(found.path)
        return
    if not recursive:
        try:
            os.rmdir(found.path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise WorkspaceRefused(400, "DIRECTORY_NOT_EMPTY",
                                       f"Folder ({shown(parts)}) is not empty: delete it with recursive") from None
            raise
        return
    if os.path.islink(found.path):
        os.unlink(found.path)  # the link, never what it points to
    else:
        shutil.rmtree(found.path)


def export_object(parts, fmt):
    """(content in ``fmt``, the stored file's extension) of a file or notebook."""
    found = existing(parts)
    if found.object_type == "DIRECTORY":
        raise invalid(f"{shown(parts)} is a directory: export its files and notebooks one by one")
    content = read_bounded(found.path)
    extension = os.path.splitext(found.path)[1].lstrip(".")
    return export_content(found.object_type, os.path.basename(found.path), content, fmt), extension


def read_bounded(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise invalid(f"{path} is not a regular file")
        if info.st_size > MAX_IMPORT_BYTES:
            raise WorkspaceRefused(400, "MAX_NOTEBOOK_SIZE_EXCEEDED",
                                   f"The file is {info.st_size:,} bytes: exports are limited to "
                                   f"{MAX_IMPORT_BYTES:,} bytes")
        return f.read(MAX_IMPORT_BYTES + 1)


def read_file(workspace_path, max_bytes=1024 * 1024):
    """The bytes of a workspace file named by a /Workspace/... path, for the server's own use
    (a bundle's metadata file); OSError or WorkspaceRefused if it cannot be read."""
    found = existing(workspace_parts(workspace_path))
    if found.object_type == "DIRECTORY":
        raise IsADirectoryError(workspace_path)
    if found.info.st_size > max_bytes:
        raise OSError(errno.EFBIG, f"{workspace_path} is larger than {max_bytes:,} bytes")
    return read_bounded(found.path)
