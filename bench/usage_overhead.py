"""What recording usage costs an attempt: no-op Python-file tasks through ``supervise`` with
``measure_usage`` on and off, forked from the fork server and started as fresh interpreters.

Prints, per launch path, the median wall time per attempt with and without measuring (RUNS
attempts each, interleaved so load on the machine hits both alike), the difference in ms and the
ratio. Wall times of a few ms are noisy on a busy machine, so it also prints the time spent
inside the measuring code itself per attempt (its functions timed where the supervisor calls
them), and the parts that cannot be switched off or that a no-op attempt does not reach: the
fork server's own share (reaping and summing the group, always on) and one sample of a running
one-process tree (taken from 1 ms (fresh) or 20 ms (forked) after the start, fourfold apart
up to every 100 ms).

Target (issue 19): recording usage adds <= 1 ms to an attempt.
Run it from the repository root: ``python bench/usage_overhead.py``.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runs.executors import forkserver, supervisor, usage  # noqa: E402
from runs.executors.launch import prepare_attempt  # noqa: E402
from runs.executors.supervisor import read_attempt_result, supervise  # noqa: E402
from runs.executors.usage import TreeMeter  # noqa: E402

RUNS = 200


def attempt_ms(root: Path, name, *, forked, measured) -> float:
    spec = prepare_attempt({"task_key": "noop", "spark_python_task": {"python_file": "noop.py"}},
                           attempt_dir=root / name, workspace_root=root)
    started = time.perf_counter()
    outcome = supervise(spec, log_path=root / name / "log.txt", timeout_seconds=60, use_fork_server=forked,
                        measure_usage=measured)
    elapsed = time.perf_counter() - started
    if not outcome.succeeded or (outcome.usage is None) == measured:
        raise SystemExit(f"no-op task failed or was measured wrongly: {read_attempt_result(spec, outcome)}")
    return elapsed * 1000


class Stopwatch:
    """Times the measuring functions where the supervisor calls them."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, owner, name):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


def compare(root: Path, *, forked, runs):
    on, off, inside = [], [], []
    watch = Stopwatch()
    for owner, name in ((usage.TreeMeter, "sample"), (usage.TreeMeter, "from_leader"),
                        (usage.TreeMeter, "from_group"), (usage.Figures, "of_rusage"),
                        (supervisor, "resident_bytes")):
        watch.wrap(owner, name)
    for i in range(runs):
        first, second = (True, False) if i % 2 else (False, True)  # alternate the order too
        for measured in (first, second):
            watch.seconds = 0.0
            (on if measured else off).append(attempt_ms(root, f"{forked}-{measured}-{i}", forked=forked,
                                                        measured=measured))
            if measured:
                inside.append(watch.seconds * 1000)
    return statistics.median(on), statistics.median(off), statistics.median(inside), max(inside)


def server_share_us(times=2000) -> float:
    """The fork server's extra steps per attempt: reap what is left of the group (nothing, for a
    no-op), sweep strays, and the usage report in its answer."""
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        report = {"cpu_seconds": 0.0012, "read_bytes": 0, "written_bytes": 4096, "max_rss_bytes": 11 << 20}
        forkserver._reap_group(os.getpid(), report)  # a group with none of our children: one call
        forkserver._reap_strays()
        json.dumps({"exit": 0, "usage": report})
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) * 1e6


def sample_us(times=500) -> float:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meter = TreeMeter(child.pid)
        meter.sample()
        spent = []
        for _ in range(times):
            started = time.perf_counter()
            meter.sample()
            spent.append(time.perf_counter() - started)
        return statistics.median(spent) * 1e6
    finally:
        child.kill()
        child.wait()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "noop.py").write_text("")
        for forked in (True, False):  # warm the page cache, the bytecode cache and the fork server
            attempt_ms(root, f"warm-{forked}", forked=forked, measured=True)
        results = {"forked from the fork server": compare(root, forked=True, runs=RUNS),
                   "fresh interpreter": compare(root, forked=False, runs=RUNS // 4)}
    for path, (on, off, inside, most) in results.items():
        runs = RUNS if path.startswith("forked") else RUNS // 4
        print(f"{path}, median of {runs} no-op attempts: {on:.2f} ms measured, {off:.2f} ms not: "
              f"{on - off:+.3f} ms per attempt ({on / off:.3f}x); inside the measuring code: "
              f"{inside:.3f} ms median, {most:.3f} ms at most")
    print(f"fork server's share (always on, in both figures above): {server_share_us():.1f} us per attempt")
    print(f"one sample of a running one-process tree: {sample_us():.1f} us "
          "(a forked no-op attempt ends before its first sample)")


if __name__ == "__main__":
    main()
