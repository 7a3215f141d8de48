"""The functional core (jobs/spec, runs/engine) and the task-process side (runs/executors) must
not import Django: checked in a fresh interpreter, where nothing else has imported it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules_of(package):
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / package.replace(".", "/")).glob("*.py")
        if p.name != "__init__.py"
    )


@pytest.mark.parametrize("package", ["jobs.spec", "runs.engine", "runs.executors"])
def test_the_package_imports_without_django(package):
    modules = modules_of(package)
    assert modules, f"{package} has no modules"
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'jobs.models', 'runs.models')))\n"
        + "print(','.join(leaked))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{package} pulled in: {done.stdout.strip()}"
