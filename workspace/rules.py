"""What a Workspace API call means, decided without touching a disk (pure).

- ``workspace_parts``: a path as the API takes it (``/Users/a/x`` or ``/Workspace/Users/a/x``)
  as its names below the workspace root; ``.`` and ``..`` are refused outright.
- Notebooks are stored as files with their extension (``nb.py`` with the ``# Databricks notebook
  source`` header, ``nb.ipynb``) and shown without it (``/Users/a/nb``), as Databricks names
  them; a notebook_task's ``notebook_path`` (with or without the extension) finds the file.
- ``plan_import``: what an import stores where (format AUTO, SOURCE, JUPYTER or RAW).
- ``write_refusal``: who may change what: admins anything; a user or service principal their
  ``/Users/<name>/`` and ``/Shared/``; a task's run-as token nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_IMPORT_BYTES = 10 * 1024 * 1024  # Databricks' limit for one import or export
MAX_PATH_BYTES = 3072  # in UTF-8; below the system's PATH_MAX with the root in front
MAX_NAME_BYTES = 255
PREFIX = "/Workspace"

# Databricks source notebooks: language -> (stored extension, first line).
SOURCE_NOTEBOOKS = {
    "PYTHON": (".py", "# Databricks notebook source"),
    "SQL": (".sql", "-- Databricks notebook source"),
    "SCALA": (".scala", "// Databricks notebook source"),
    "R": (".r", "# Databricks notebook source"),
}
JUPYTER_EXTENSION = ".ipynb"
NOTEBOOK_EXTENSIONS = (JUPYTER_EXTENSION, *(ext for ext, _ in SOURCE_NOTEBOOKS.values()))
IMPORT_FORMATS = ("AUTO", "SOURCE", "JUPYTER", "RAW", "HTML", "DBC", "R_MARKDOWN")
EXPORT_FORMATS = ("SOURCE", "JUPYTER", "AUTO", "RAW", "HTML", "DBC", "R_MARKDOWN")
SUPPORTED_FORMATS = ("AUTO", "SOURCE", "JUPYTER", "RAW")
CELL_SEPARATOR = "\n# COMMAND ----------\n"


class WorkspaceRefused(Exception):
    """A refusal with its Databricks error code and HTTP status."""

    def __init__(self, http_status: int, error_code: str, message: str):
        super().__init__(message)
        self.http_status, self.error_code, self.message = http_status, error_code, message


def invalid(message: str) -> WorkspaceRefused:
    return WorkspaceRefused(400, "INVALID_PARAMETER_VALUE", message)


def not_found(path: str) -> WorkspaceRefused:
    return WorkspaceRefused(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")


def already_exists(path: str, http_status: int = 400) -> WorkspaceRefused:
    # The Databricks CLI's filer reads "Path (<path>) already exists." to name the file.
    return WorkspaceRefused(http_status, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")


def too_large(size: int) -> WorkspaceRefused:
    return WorkspaceRefused(400, "MAX_NOTEBOOK_SIZE_EXCEEDED",
                            f"File size imported is {size:,} bytes, exceeded max size ({MAX_IMPORT_BYTES:,} bytes)")


# --- paths ------------------------------------------------------------------------------------


def workspace_parts(path: object) -> tuple[str, ...]:
    """The names of ``path`` below the workspace root; () is the root itself."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise invalid(f"path must be an absolute workspace path such as /Users/<you>/x, not {path!r}")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise invalid(f"path must be at most {MAX_PATH_BYTES:,} bytes long")
    if "\x00" in path or "\\" in path:
        raise invalid(f"path {path!r} may not contain NUL or backslash characters")
    if path == PREFIX or path.startswith(PREFIX + "/"):
        path = path[len(PREFIX):]
    parts = tuple(name for name in path.split("/") if name)
    for name in parts:
        if name in (".", ".."):
            raise invalid(f"path {path!r} may not contain '.' or '..': give the path itself")
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise invalid(f"path {path!r} has a name longer than {MAX_NAME_BYTES} bytes")
    return parts


def shown(parts: tuple[str, ...]) -> str:
    """How the API names an object: from the workspace root, without the /Workspace prefix."""
    return "/" + "/".join(parts)


def without_extension(name: str, extension: str) -> str:
    return name[:-len(extension)] if name.lower().endswith(extension) and len(name) > len(extension) else name


# --- notebooks --------------------------------------------------------------------------------


def notebook_language(name: str, head: bytes) -> str | None:
    """The language of a stored file that is a notebook (by its extension and first bytes), else None."""
    lower = name.lower()
    if lower.endswith(JUPYTER_EXTENSION):
        return "PYTHON" if head.lstrip()[:1] == b"{" else None
    first_line = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip()
    for language, (extension, header) in SOURCE_NOTEBOOKS.items():
        if lower.endswith(extension) and first_line == header:
            return language
    return None


def is_jupyter(content: bytes) -> bool:
    try:
        document = json.loads(content)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("cells"), list)


def jupyter_as_source(content: bytes) -> bytes:
    """A Jupyter notebook as a Databricks Python source notebook (markdown cells as %md)."""
    cells = []
    for cell in json.loads(content).get("cells", []):
        if not isinstance(cell, dict):
            continue
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        if cell.get("cell_type") == "markdown":
            text = "\n".join(["# MAGIC %md", *(f"# MAGIC {line}".rstrip() for line in text.splitlines())])
        elif cell.get("cell_type") != "code":
            continue
        cells.append(text.rstrip("\n"))
    header = SOURCE_NOTEBOOKS["PYTHON"][1]
    return (header + "\n" + CELL_SEPARATOR.join(cells) + "\n").encode("utf-8")


# --- imports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """What an import stores: ``stored`` (names below the root), shown as ``parts``."""

    parts: tuple[str, ...]
    stored: tuple[str, ...]
    object_type: str  # FILE or NOTEBOOK
    content: bytes
    language: str | None = None


def plan_import(parts: tuple[str, ...], content: bytes, fmt: str, language: str | None) -> Planned:
    if not parts:
        raise invalid("path must name a file or notebook, not the workspace root")
    if fmt not in IMPORT_FORMATS:
        raise invalid(f"format must be one of {', '.join(IMPORT_FORMATS)}, not {fmt!r}")
    if fmt not in SUPPORTED_FORMATS:
        raise invalid(f"format {fmt} is not supported by this server: use SOURCE, JUPYTER, AUTO or RAW")
    if language is not None and language not in SOURCE_NOTEBOOKS:
        raise invalid(f"language must be one of {', '.join(SOURCE_NOTEBOOKS)}, not {language!r}")
    if len(content) > MAX_IMPORT_BYTES:
        raise too_large(len(content))
    *parent, name = parts
    if fmt == "RAW":
        return Planned(parts, parts, "FILE", content)
    if fmt == "JUPYTER" or (fmt == "AUTO" and name.lower().endswith(JUPYTER_EXTENSION) and is_jupyter(content)):
        if not is_jupyter(content):
            raise invalid("content is not a Jupyter notebook: it must be a JSON object with a 'cells' list")
        return notebook(parent, without_extension(name, JUPYTER_EXTENSION), JUPYTER_EXTENSION, content, "PYTHON")
    if fmt == "AUTO":
        found = None if name.lower().endswith(JUPYTER_EXTENSION) else notebook_language(name, content[:200])
        if found is None:
            return Planned(parts, parts, "FILE", content)
        extension = SOURCE_NOTEBOOKS[found][0]
        return notebook(parent, without_extension(name, extension), extension, content, found)
    if language is None:  # SOURCE
        raise invalid("language is required to import a SOURCE notebook (PYTHON, SQL, SCALA or R); "
                      "use format AUTO or RAW for a file")
    extension, header = SOURCE_NOTEBOOKS[language]
    text = content.decode("utf-8", "replace").lstrip("\ufeff")
    if text.split("\n", 1)[0].rstrip() != header:
        content = (header + "\n" + text).encode("utf-8")  # Databricks adds it too
    return notebook(parent, without_extension(name, extension), extension, content, language)


def notebook(parent: list[str], name: str, extension: str, content: bytes, language: str) -> Planned:
    parts = (*parent, name)
    return Planned(parts, (*parent, name + extension), "NOTEBOOK", content, language)


def stored_variants(parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Where a notebook shown as ``parts`` may be stored."""
    *parent, name = parts
    return [(*parent, name + extension) for extension in NOTEBOOK_EXTENSIONS]


# --- exports ----------------------------------------------------------------------------------


def export_content(object_type: str, stored_name: str, content: bytes, fmt: str) -> bytes:
    """The bytes an export in ``fmt`` answers for an object stored as ``content``."""
    if fmt not in EXPORT_FORMATS:
        raise invalid(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt!r}")
    if fmt in ("AUTO", "RAW") or object_type == "FILE" and fmt == "SOURCE":
        return content
    if object_type == "FILE":
        raise invalid(f"a file exports as SOURCE, AUTO or RAW, not {fmt}")
    jupyter = stored_name.lower().endswith(JUPYTER_EXTENSION)
    if fmt == "SOURCE":
        return jupyter_as_source(content) if jupyter else content
    if fmt == "JUPYTER" and jupyter:
        return content
    raise invalid(f"format {fmt} is not supported for this notebook by this server: export it as "
                  f"{'JUPYTER' if jupyter else 'SOURCE'} or AUTO")


# --- who may change what -----------------------------------------------------------------------


def write_refusal(parts: tuple[str, ...], *, user_name: str, is_admin: bool, for_a_task: bool,
                  making_directories: bool = False) -> str | None:
    """Why this caller may not change ``parts`` (None: they may)."""
    where = f"/Workspace{shown(parts)}" if parts else "/Workspace"
    if for_a_task:
        return (f"A task's run-as token may read the workspace but not change it ({where}): "
                "tasks must not rewrite code that other runs execute")
    if is_admin:
        return None
    for own in (("Users", user_name), ("Shared",)):
        inside = parts[:len(own)] == own
        if inside and (len(parts) > len(own) or making_directories):
            return None
    return (f"{user_name} may change only /Workspace/Users/{user_name}/ and /Workspace/Shared/, "
            f"not {where}: workspace admins may change any path")
