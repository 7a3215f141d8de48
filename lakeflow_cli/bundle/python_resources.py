"""Resources defined in Python, loaded by the ``databricks-bundles`` package's own build entry
point, the one the Databricks CLI calls: ``python -m databricks.bundles.build --phase
load_resources`` (then ``apply_mutators``) with the bundle as JSON in and out. The interpreter
is ``python.venv_path``'s when the bundle names one, else the one running this command."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from lakeflow_cli.bundle.located import Mapping, Sequence, plain, where
from lakeflow_cli.bundle.problems import BundleError, Location, Problem

PHASES = ("load_resources", "apply_mutators")


def configured(config):
    python = config.get("python") or (config.get("experimental") or {}).get("python")
    return python if isinstance(python, dict) and (python.get("resources") or python.get("mutators")) else None


def interpreter(root, python):
    venv = python.get("venv_path")
    if not venv:
        return sys.executable
    for candidate in (Path(root) / venv / "bin" / "python", Path(root) / venv / "Scripts" / "python.exe"):
        if candidate.is_file():
            return str(candidate)
    raise BundleError([Problem(f"python.venv_path {venv}: no Python interpreter in it", where(python, "venv_path"),
                               "python.venv_path")])


def run_phase(config, root, phase):
    """``config`` with the phase's resources merged in; problems carry the Python file and line."""
    python = configured(config)
    if python is None or (phase == "apply_mutators" and not python.get("mutators")):
        return config
    with tempfile.TemporaryDirectory(prefix="lakeflow-bundle-") as scratch:
        scratch = Path(scratch)
        paths = {name: scratch / f"{name}.json" for name in ("input", "output", "diagnostics", "locations")}
        paths["input"].write_text(json.dumps(plain(config)))
        command = [interpreter(root, python), "-m", "databricks.bundles.build", "--phase", phase]
        for name in ("input", "output", "diagnostics", "locations"):
            command += [f"--{name}", str(paths[name])]
        finished = subprocess.run(command, cwd=root, capture_output=True, text=True)
        problems = _diagnostics(paths["diagnostics"], root)
        if finished.returncode != 0 or any(p.severity == "error" for p in problems):
            if not problems:
                problems = [Problem(f"python resources ({phase}) failed:\n{finished.stderr.strip()[-4000:]}")]
            raise BundleError(problems)
        output = json.loads(paths["output"].read_text())
        locations = _locations(paths["locations"], root)
    return _merge_output(config, output, locations)


def _diagnostics(path, root):
    problems = []
    if not path.exists():
        return problems
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        location = _location(item.get("location"), root)
        message = item.get("summary", "")
        if item.get("detail"):
            message += f"\n{item['detail']}"
        problems.append(Problem(message, location, item.get("path") or "",
                                "error" if item.get("severity", "error") == "error" else "warning"))
    return problems


def _location(item, root):
    if not isinstance(item, dict) or not item.get("file"):
        return None
    file = Path(item["file"])
    if file.is_absolute():
        try:
            file = file.relative_to(Path(root).resolve())
        except ValueError:
            pass
    return Location(str(file), int(item.get("line") or 1), int(item.get("column") or 1))


def _locations(path, root):
    found = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            found[item.get("path", "")] = _location(item, root)
    return found


def _merge_output(config, output, locations):
    """New or changed resources from the Python code, located at the function that made them."""
    resources = config.get("resources")
    if not isinstance(resources, dict):
        resources = Mapping(location=config.location)
        config.set("resources", resources)
    for kind, items in (output.get("resources") or {}).items():
        mine = resources.get(kind)
        if not isinstance(mine, dict):
            mine = Mapping(location=resources.location)
            resources.set(kind, mine)
        for key, body in items.items():
            if key in mine and plain(mine[key]) == body:
                continue
            at = locations.get(f"resources.{kind}.{key}") or where(mine, key)
            mine.set(key, _relocated(mine.get(key), body, at), at)
    return config


def _relocated(old, new, at):
    """``new`` where it differs from ``old``, located at ``at`` (the Python function that made
    it); what a mutator left as it was keeps its own place, so a relative path written in a YAML
    file stays relative to that file."""
    if isinstance(old, dict) and isinstance(new, dict):
        result = Mapping(location=old.location or at)
        for key, item in new.items():
            if key in old and plain(old[key]) == item:
                result.set(key, old[key], where(old, key))
            else:
                result.set(key, _relocated(old.get(key), item, at), at)
        return result
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        result = Sequence(location=old.location or at)
        for index, item in enumerate(new):
            same = plain(old[index]) == item
            result.add(old[index] if same else _relocated(old[index], item, at), where(old, index) if same else at)
        return result
    return _located(new, at)


def _located(value, at):
    if isinstance(value, dict):
        result = Mapping(location=at)
        for key, item in value.items():
            result.set(key, _located(item, at), at)
        return result
    if isinstance(value, list):
        result = Sequence(location=at)
        for item in value:
            result.add(_located(item, at), at)
        return result
    return value
