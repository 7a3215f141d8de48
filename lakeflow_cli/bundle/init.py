"""``bundle init``: a starter bundle from a template in ``templates/``, with ``{{project_name}}``
filled in (in file contents and paths)."""

import re
from pathlib import Path

from lakeflow_cli.bundle.problems import BundleError, Problem

TEMPLATES = Path(__file__).resolve().parent / "templates"
RENAMED = {"gitignore.template": ".gitignore"}  # a .gitignore inside our package would hide files from git


def templates():
    return sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir())


def init(template, project_name, output_dir):
    if template not in templates():
        raise BundleError([Problem(f"unknown template {template!r}; available: {', '.join(templates())}")])
    if not re.fullmatch(r"[a-z][a-z0-9_]*", project_name):
        raise BundleError([Problem(f"project name {project_name!r}: use lower-case letters, digits and _, "
                                   "starting with a letter (it is also the Python package's name)")])
    target = Path(output_dir) / project_name
    if target.exists():
        raise BundleError([Problem(f"{target} already exists: choose another --output-dir or project name")])
    source = TEMPLATES / template
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        relative = str(path.relative_to(source)).replace("{{project_name}}", project_name)
        relative = RENAMED.get(relative, relative)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(path.read_text().replace("{{project_name}}", project_name))
    return target
