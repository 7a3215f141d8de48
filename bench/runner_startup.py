"""Start-up cost of a task process: a no-op spark_python_task versus a bare interpreter.

Prints the median wall time of 20 no-op Python-file tasks, each through
``prepare_attempt`` + ``supervise`` (spec written, process started, waited for, result file
written), started as a fresh interpreter and forked from the worker's fork server, next to the
median of 20 bare ``python -c pass`` runs started the same way, and the ratios. Run it from the repository root: ``python bench/runner_startup.py``.
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runs.executors.launch import prepare_attempt  # noqa: E402
from runs.executors.supervisor import read_attempt_result, supervise  # noqa: E402

RUNS = 20


def time_noop_task(root: Path, i, forked=False) -> float:
    started = time.perf_counter()
    spec = prepare_attempt(
        {"task_key": "noop", "spark_python_task": {"python_file": "noop.py"}},
        attempt_dir=root / f"attempt-{i}",
        workspace_root=root,
    )
    outcome = supervise(spec, log_path=root / f"attempt-{i}" / "log.txt", timeout_seconds=60,
                        use_fork_server=forked)
    elapsed = time.perf_counter() - started
    if not outcome.succeeded:
        raise SystemExit(f"no-op task failed: {read_attempt_result(spec, outcome)}")
    return elapsed


def time_bare_interpreter(root: Path) -> float:
    started = time.perf_counter()
    with open(root / "bare.log", "ab") as log:
        subprocess.run([sys.executable, "-c", "pass"], stdin=subprocess.DEVNULL, stdout=log,
                       stderr=log, check=True)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "noop.py").write_text("")
        time_noop_task(root, "warm")  # warm the page cache and runner's bytecode cache
        time_noop_task(root, "warm-fork", forked=True)  # and start the fork server
        time_bare_interpreter(root)
        fresh, forked, bare = [], [], []
        for i in range(RUNS):  # interleaved, so load on the machine hits all alike
            fresh.append(time_noop_task(root, i))
            forked.append(time_noop_task(root, f"fork-{i}", forked=True))
            bare.append(time_bare_interpreter(root))
    fresh_ms, forked_ms, bare_ms = (statistics.median(times) * 1000 for times in (fresh, forked, bare))
    print(f"bare `python -c pass`, median of {RUNS}: {bare_ms:.1f} ms")
    print(f"no-op spark_python_task (prepare_attempt + supervise), median of {RUNS}: "
          f"{fresh_ms:.1f} ms as a fresh interpreter ({fresh_ms / bare_ms:.2f}x), "
          f"{forked_ms:.1f} ms forked from the fork server ({forked_ms / bare_ms:.2f}x)")


if __name__ == "__main__":
    main()
