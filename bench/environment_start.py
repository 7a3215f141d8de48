"""Task environments: build cold and warm, and task start in an environment versus the default.

Prints medians of:
- a cold build (uv venv + uv pip install of ``six==1.16.0`` from the registry and a local wheel,
  empty uv cache), a build with a warm uv cache (a new environment of already downloaded
  packages), and a cache hit (the setup phase of a task whose environment is built: what every
  later task of the same spec pays, `set_up_environment` with its database look-up);
- a no-op spark_python_task started (prepare_attempt + supervise) on the default interpreter and
  on the environment's, both forked from a warm fork server and as fresh interpreters, with the
  ratio environment / default (issue 16's target: within 2x).

Run it from the repository root: ``python bench/environment_start.py`` (needs the registry).
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOME = tempfile.mkdtemp(prefix="lakeflow-bench-env-")
os.environ.update(LAKEFLOW_HOME=HOME, LAKEFLOW_TASK_USER="", DJANGO_SETTINGS_MODULE="lakeflow_site.settings",
                  LAKEFLOW_TASK_FILE_ROOTS=tempfile.gettempdir())  # where the bench keeps its wheel
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from runs.environments import set_up_environment  # noqa: E402
from runs.executors.environments import build_environment, environment_python  # noqa: E402
from runs.executors.launch import prepare_attempt  # noqa: E402
from runs.executors.supervisor import read_attempt_result, supervise  # noqa: E402
from tests.wheels import make_wheel  # noqa: E402

BUILDS = 5
STARTS = 20


def median_ms(times):
    return statistics.median(times) * 1000


def timed(call):
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def builds(root, lines):
    cold, warm = [], []
    with open(root / "build.log", "wb") as log:
        for i in range(BUILDS):
            cold.append(timed(lambda: build_environment(
                root / f"cold-{i}", lines, python=settings.LAKEFLOW_TASK_PYTHON, uv=settings.LAKEFLOW_UV,
                log=log, cache_dir=root / f"cache-{i}")))
            warm.append(timed(lambda: build_environment(
                root / f"warm-{i}", lines, python=settings.LAKEFLOW_TASK_PYTHON, uv=settings.LAKEFLOW_UV,
                log=log, cache_dir=root / f"cache-{i}")))
    return cold, warm


def cache_hits(root, lines):
    job = {"environments": [{"environment_key": "e", "spec": {"dependencies": lines}}]}
    task = {"task_key": "t", "environment_key": "e", "spark_python_task": {"python_file": "noop.py"}}
    ready = set_up_environment(job, task, root / "attempts" / "first")  # builds it
    hits = [timed(lambda i=i: set_up_environment(job, task, root / "attempts" / f"hit-{i}")) for i in range(STARTS)]
    return ready.python, hits


def start(root, name, python, forked):
    started = time.perf_counter()
    spec = prepare_attempt({"task_key": "noop", "spark_python_task": {"python_file": "noop.py"}},
                           attempt_dir=root / name, workspace_root=root, python=python)
    outcome = supervise(spec, log_path=root / name / "log.txt", timeout_seconds=60, use_fork_server=forked)
    elapsed = time.perf_counter() - started
    if not outcome.succeeded:
        raise SystemExit(f"no-op task failed: {read_attempt_result(spec, outcome)}")
    return elapsed


def main():
    call_command("migrate", verbosity=0)
    root = Path(tempfile.mkdtemp(prefix="lakeflow-bench-env-work-"))
    (root / "noop.py").write_text("")
    lines = ["six==1.16.0", str(make_wheel(root))]
    cold, warm = builds(root, lines)
    env_python, hits = cache_hits(root, lines)
    print(f"environment build (six from the registry + a local wheel), median of {BUILDS}: "
          f"{median_ms(cold):.0f} ms cold (empty uv cache), {median_ms(warm):.0f} ms with a warm uv cache")
    print(f"setup phase of a task whose environment is built (cache hit), median of {STARTS}: "
          f"{median_ms(hits):.1f} ms")

    default_python = settings.LAKEFLOW_TASK_PYTHON
    for forked in (True, False):  # each warms its fork servers (or page cache) first
        start(root, f"warm-default-{forked}", default_python, forked)
        start(root, f"warm-env-{forked}", env_python, forked)
    times = {(kind, forked): [] for kind in ("default", "env") for forked in (True, False)}
    for i in range(STARTS):  # interleaved, so load on the machine hits all alike
        for forked in (True, False):
            times["default", forked].append(start(root, f"default-{forked}-{i}", default_python, forked))
            times["env", forked].append(start(root, f"env-{forked}-{i}", env_python, forked))
    for forked, how in ((True, "forked from a warm fork server"), (False, "as a fresh interpreter")):
        default_ms, env_ms = median_ms(times["default", forked]), median_ms(times["env", forked])
        print(f"no-op task start {how}, median of {STARTS}: {default_ms:.1f} ms default, "
              f"{env_ms:.1f} ms in the environment ({env_ms / default_ms:.2f}x)")
    print(f"(environment interpreter: {environment_python(Path(env_python).parents[1])})")


if __name__ == "__main__":
    main()
