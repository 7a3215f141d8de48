"""Idle memory of `manage.py serve`: the resident memory of its whole process tree (web server,
cluster sentinel and workers, clock) once it has started and sits idle with the demo job.

Prints each process's RSS and the total, next to a bare `python -c "import time; time.sleep(5)"`
for scale. Run it from the repository root: `python bench/idle_memory.py`. Target (DESIGN.md):
<= 250 MB RSS. RSS counts shared pages once per process, so the total overstates what the tree
really uses; PSS (proportional) is printed too where /proc/<pid>/smaps_rollup exists. Target
(issue 20): <= 150 MB PSS; the node forks its web server and clock (runs/management/commands/
qcluster.py), so most of Django's pages are shared and PSS is the figure to read.
Then the idle CPU of each process over 60 s (utime+stime, with its reaped children's), and the
total as a share of one core. Target (issue 20): <= 0.5 %.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import (  # noqa: E402
    PYTHON,
    Server,
    base_env,
    free_port,
    make_workspace,
    serve_is_starting_its_node,
)

SETTLE_SECONDS = 15
CPU_SECONDS = 60


def tree(pid):
    """pid and all its descendants."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [pid]
    if children.exists():
        for child in children.read_text().split():
            found += tree(int(child))
    return found


def memory_kb(pid, field):
    """VmRSS from status, or Pss from smaps_rollup, in kB (0 if gone or unknown)."""
    path = Path(f"/proc/{pid}/smaps_rollup" if field == "Pss" else f"/proc/{pid}/status")
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """utime+stime plus the reaped children's cutime+cstime of one process, in seconds (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ")": state is field 3, so utime..cstime (fields 14-17) are [11:15]
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def command(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").replace("\n", " ").strip()[:90]
    except OSError:
        return "?"


def main():
    tmp = Path(tempfile.mkdtemp(prefix="idle-memory-"))
    port = free_port()
    env = base_env(tmp / "home", make_workspace(tmp), port)
    # The API token is made once serve's migrations are done, not during them.
    server = Server("serve", env, [("serve", [PYTHON, "manage.py", "serve", "--port", str(port)])], tmp / "workspace",
                    database_ready=serve_is_starting_its_node)
    try:
        time.sleep(SETTLE_SECONDS)
        pids = tree(server.procs[0].pid)
        rss_total = pss_total = 0
        for pid in pids:
            rss, pss = memory_kb(pid, "VmRSS"), memory_kb(pid, "Pss")
            rss_total, pss_total = rss_total + rss, pss_total + pss
            print(f"{rss / 1024:7.1f} MB RSS {pss / 1024:7.1f} MB PSS  {command(pid)}")
        print(f"serve, idle after {SETTLE_SECONDS} s, {len(pids)} processes: {rss_total / 1024:.0f} MB RSS, "
              f"{pss_total / 1024:.0f} MB PSS")
        # Idle CPU: CPU seconds used by each process over a quiet minute (load barely changes them).
        before = {pid: cpu_seconds(pid) for pid in pids}
        time.sleep(CPU_SECONDS)
        used_total = 0.0
        for pid in pids:
            used = max(cpu_seconds(pid) - before[pid], 0.0)
            used_total += used
            print(f"{used:6.2f} CPU s {100 * used / CPU_SECONDS:5.2f} %  {command(pid)}")
        print(f"serve, idle CPU over {CPU_SECONDS} s: {used_total:.2f} CPU s = "
              f"{100 * used_total / CPU_SECONDS:.2f} % of one core")
    finally:
        server.stop()
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    time.sleep(1)
    print(f"a bare interpreter: {memory_kb(bare.pid, 'VmRSS') / 1024:.1f} MB RSS")
    bare.wait()


if __name__ == "__main__":
    main()
