"""``artifacts`` of type ``whl``, built and uploaded as the CLI does: the ``build`` command (by
default ``uv build --wheel``) runs in the artifact's ``path`` after its ``dist`` directory is
cleared; the wheels it made (``files[].source`` globs, by default ``dist/*.whl``) and every local
wheel or jar a job names in ``libraries`` or an environment's ``dependencies`` are uploaded to
``${workspace.artifact_path}/.internal/`` and the references rewritten to the uploaded paths (a
glob becomes one entry per file it matches)."""

import glob
import os
import posixpath
import shutil
import subprocess
from pathlib import Path

from lakeflow_cli.bundle.located import where
from lakeflow_cli.bundle.paths import base_directory, is_local_relative, job_tasks
from lakeflow_cli.bundle.problems import BundleError, Problem

LIBRARY_KINDS = ("whl", "jar")


def check(config):
    problems = []
    for name, artifact in (config.get("artifacts") or {}).items():
        at = where(config["artifacts"], name)
        if not isinstance(artifact, dict):
            problems.append(Problem(f"artifact {name} must be a mapping", at, f"artifacts.{name}"))
            continue
        kind = artifact.get("type", "whl")
        if kind not in ("whl", "jar"):
            problems.append(Problem(f"artifact {name}: type must be whl or jar, not {kind!r}", at,
                                    f"artifacts.{name}.type"))
        if kind == "jar" and not artifact.get("build"):
            problems.append(Problem(f"artifact {name}: a jar artifact needs a build command", at,
                                    f"artifacts.{name}.build"))
    return problems


def default_build_command():
    from uv import find_uv_bin

    return f'"{find_uv_bin()}" build --wheel'


def build(config, root, say):
    """Run every artifact's build; raise BundleError with the command's output when one fails."""
    for name, artifact in (config.get("artifacts") or {}).items():
        directory = base_directory(root, where(config["artifacts"], name)) / artifact.get("path", ".")
        if not directory.is_dir():
            raise BundleError([Problem(f"artifact {name}: path {directory} does not exist",
                                       where(config["artifacts"], name), f"artifacts.{name}.path")])
        command = artifact.get("build") or default_build_command()
        if artifact.get("type", "whl") == "whl":
            shutil.rmtree(directory / "dist", ignore_errors=True)
        say(f"Building {name}...")
        finished = subprocess.run(command, shell=True, cwd=directory, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        if finished.returncode != 0:
            output = (finished.stdout + finished.stderr).strip()[-4000:]
            raise BundleError([Problem(f"artifact {name}: build failed ({command}), exit {finished.returncode}:\n"
                                       f"{output}", where(config["artifacts"], name), f"artifacts.{name}.build")])
        patterns = [entry.get("source") for entry in artifact.get("files") or [] if isinstance(entry, dict)]
        built = [path for pattern in (patterns or ["dist/*.whl"]) for path in glob.glob(str(directory / pattern))]
        if not built:
            raise BundleError([Problem(f"artifact {name}: the build made no file matching "
                                       f"{', '.join(patterns or ['dist/*.whl'])}", where(config["artifacts"], name),
                                       f"artifacts.{name}.files")])


def collect_uploads(config, root):
    """Rewrite local library references in place; return (uploads, problems): uploads map each
    local file to its remote path."""
    remote_dir = posixpath.join(config["workspace"]["artifact_path"], ".internal")
    uploads, problems = {}, []

    def expand(pattern, at, path):
        matches = sorted(glob.glob(str(base_directory(root, at) / pattern)))
        matches = [m for m in matches if Path(m).is_file()]
        if not matches:
            problems.append(Problem(f"file doesn't exist: {pattern} (no file matches it; is the artifact that builds "
                                    "it defined?)", at, path))
            return []
        remote = []
        for match in matches:
            target = posixpath.join(remote_dir, Path(match).name)
            uploads[str(Path(match).resolve())] = target
            remote.append(target)
        return remote

    for key, job in ((config.get("resources") or {}).get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        for task, path in job_tasks(job, f"resources.jobs.{key}"):
            libraries = task.get("libraries")
            if not isinstance(libraries, list):
                continue
            rewritten = []
            for index, library in enumerate(libraries):
                kind = next((k for k in LIBRARY_KINDS if isinstance(library, dict) and k in library), None)
                if kind and is_local_relative(library[kind]):
                    for remote in expand(library[kind], where(libraries, index), f"{path}.libraries[{index}].{kind}"):
                        rewritten.append({**library, kind: remote})
                else:
                    rewritten.append(library)
            task["libraries"] = rewritten
        for env_index, environment in enumerate(job.get("environments") or []):
            spec = (environment or {}).get("spec") if isinstance(environment, dict) else None
            dependencies = spec.get("dependencies") if isinstance(spec, dict) else None
            if not isinstance(dependencies, list):
                continue
            rewritten = []
            for index, dependency in enumerate(dependencies):
                if _is_local_package(dependency):
                    rewritten += expand(dependency, where(dependencies, index),
                                        f"resources.jobs.{key}.environments[{env_index}].spec.dependencies[{index}]")
                else:
                    rewritten.append(dependency)
            spec["dependencies"] = rewritten
    return uploads, problems


def _is_local_package(dependency):
    return (is_local_relative(dependency) and not dependency.startswith("-")
            and (dependency.startswith(("./", "../")) or dependency.endswith((".whl", ".jar"))))
