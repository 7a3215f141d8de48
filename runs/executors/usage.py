"""What one attempt's process tree consumed: CPU, peak memory, storage bytes (in the worker).

The figures come from the kernel, never from wall time:

- **CPU seconds** (user + system of the whole tree). The leader's ``wait4`` rusage holds its own
  time and that of every descendant reaped inside the tree (each parent's rusage holds the
  children it waited for). What it misses are the processes nobody in the tree reaped: orphans
  and whatever is still running when the leader ends (killed then). A forked attempt's fork
  server is their *subreaper* (forkserver.py): it reaps every process left in the attempt's
  process group with ``wait4`` too and sends the sum back, so that path is exact. A fresh
  interpreter's parent is the worker, which we do not make a subreaper (it is django-q2's
  process and starts other children); there ``TreeMeter`` samples the tree from /proc (cheap
  reads of a few small files) and adds, at the end, the processes still alive just before they
  are killed and the orphans that ended between two samples (their last sample): a lower bound
  that misses only processes that lived shorter than a sample interval outside the tree.
- **Peak memory**: the largest of ru_maxrss (the tree's largest single process), the sampled
  sum of the tree's RSS, each process's sampled VmHWM, and memory.peak of the attempt's own
  cgroup (v2) when it has one below ours. A fresh interpreter's ru_maxrss counts only when it
  exceeds the worker's RSS at launch: exec keeps the high-water mark of the fork it replaced,
  which is the worker's size, not the task's. So a fresh interpreter that stays below that and
  ends before the first sample (a 1 ms shell command) has no known peak: None, never a guess.
- **Bytes read and written**: the storage-layer counters (``read_bytes`` and ``write_bytes``
  less ``cancelled_write_bytes`` of /proc/<pid>/io, the same ones rusage reports as
  ru_inblock/ru_oublock in 512-byte units, so reaped descendants are included). Not
  ``rchar``/``wchar``: those count every read and write call, pipes, sockets and page-cache hits
  included, which measures chattiness rather than the disk. Writes count when the page is
  dirtied; files on tmpfs count nothing.

Standard library only, like the rest of ``runs/executors``.
"""

import os
from dataclasses import dataclass, field

PROC = "/proc"
CGROUP_ROOT = "/sys/fs/cgroup"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SECTOR_BYTES = 512  # rusage's block counts: bytes >> 9 (Linux)
# The first sample after the start, by launch path; then the interval grows fourfold up to the
# supervisor's poll. An attempt that ends sooner costs no sample at all (the first look at a new
# process costs about 0.1-0.2 ms here, later ones about 0.05 ms). A forked no-op attempt (2-10 ms)
# needs none: the fork server's figures are exact, samples only add the sum of several processes'
# RSS. A fresh interpreter's peak may rest on the samples alone, so they start at once.
FIRST_SAMPLE_SECONDS = {"fork": 0.02, "fresh": 0.001}
SAMPLE_GROWTH = 4


@dataclass(frozen=True)
class Usage:
    """What the attempt's process tree consumed (see the module's docstring for each figure)."""

    cpu_seconds: float
    peak_memory_bytes: int | None  # None: not known (see the module's docstring)
    read_bytes: int
    written_bytes: int


@dataclass
class Figures:
    """Sums over some processes: CPU seconds, bytes read and written, largest single RSS."""

    cpu_seconds: float = 0.0
    read_bytes: int = 0
    written_bytes: int = 0
    max_rss_bytes: int = 0

    def add(self, other):
        self.cpu_seconds += other.cpu_seconds
        self.read_bytes += other.read_bytes
        self.written_bytes += other.written_bytes
        self.max_rss_bytes = max(self.max_rss_bytes, other.max_rss_bytes)
        return self

    @classmethod
    def of_rusage(cls, usage):
        """A reaped process's rusage (from ``os.wait4``): it and the descendants it reaped."""
        return cls(cpu_seconds=usage.ru_utime + usage.ru_stime, read_bytes=usage.ru_inblock * SECTOR_BYTES,
                   written_bytes=usage.ru_oublock * SECTOR_BYTES, max_rss_bytes=usage.ru_maxrss * 1024)

    @classmethod
    def of_report(cls, report):
        """The fork server's sums, or None if the report is not in that shape."""
        if not isinstance(report, dict):
            return None
        values = [report.get(name) for name in ("cpu_seconds", "read_bytes", "written_bytes", "max_rss_bytes")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values):
            return None
        cpu, read, written, rss = values
        return cls(float(cpu), int(read), int(written), int(rss))


@dataclass
class Look:
    """One process at one sample."""

    started: int  # its start time in clock ticks: with the pid, tells a reused pid apart
    ppid: int
    threads: int
    figures: Figures  # its own and its reaped children's CPU; its own bytes and RSS
    rss: int
    orphan: bool = False  # its parent is not in the tree: nobody in the tree will reap it


@dataclass
class TreeMeter:
    """Samples the process tree under ``pid`` from /proc while the supervisor watches it.

    Each ``sample`` walks the children links from the leader and revisits the processes seen
    before that the walk no longer reaches (orphans), so a grandchild that outlives its parent
    stays measured. ``inherited_rss``: the RSS of the process the leader was forked from, below
    which its ru_maxrss proves nothing (see the module's docstring).
    """

    pid: int
    inherited_rss: int = 0
    seen: dict = field(default_factory=dict)  # pid -> Look at the latest sample
    lost: Figures = field(default_factory=Figures)  # orphans that ended: at their last look
    peak_bytes: int = 0
    cgroup: str | None = None  # the leader's cgroup (v2), looked up at the first sample
    samples: int = 0

    def sample(self):
        looks = {}
        self._walk(self.pid, None, looks)
        for pid, before in self.seen.items():
            if pid not in looks:
                self._walk(pid, before.started, looks)
        for pid, before in self.seen.items():
            if pid not in looks and before.orphan:
                self.lost.add(before.figures)  # reaped outside the tree: nobody else counts it
        for pid, look in looks.items():
            look.orphan = pid != self.pid and look.ppid not in looks
        self.seen = looks
        self.peak_bytes = max(self.peak_bytes, sum(look.rss for look in looks.values()),
                              *(look.figures.max_rss_bytes for look in looks.values()))
        if self.samples == 0:
            self.cgroup = _read_cgroup(self.pid)
        self.samples += 1

    def _walk(self, root, started, looks):
        stack = [(root, started)]
        while stack:
            pid, started = stack.pop()
            if pid in looks:
                continue
            look = look_at(pid, started)
            if look is None:
                continue
            looks[pid] = look
            stack.extend((child, None) for child in _children(pid, look.threads))

    def from_leader(self, leader: Figures | None, *, killed: bool) -> Usage | None:
        """The usage of a tree whose leader the supervisor reaped itself (``leader``: its rusage).

        Call ``sample`` just before the tree is killed: at the leader's exit, or before a kill
        for a timeout or cancel. After a normal exit nothing sampled is in the leader's rusage
        (only the processes that nobody in the tree reaped are left), so the two add up; after a
        kill the leader may have reaped some of them meanwhile, so the larger total counts.
        """
        if leader is None:
            return None
        others = Figures().add(self.lost)
        everything = Figures().add(self.lost)
        for pid, look in self.seen.items():
            everything.add(look.figures)
            if pid != self.pid:
                others.add(look.figures)
        if killed:
            totals = Figures(cpu_seconds=max(leader.cpu_seconds, everything.cpu_seconds),
                             read_bytes=max(leader.read_bytes, everything.read_bytes),
                             written_bytes=max(leader.written_bytes, everything.written_bytes))
        else:
            totals = Figures().add(leader).add(others)
        return self._usage(totals, leader.max_rss_bytes if leader.max_rss_bytes > self.inherited_rss else 0)

    def from_group(self, group: Figures | None) -> Usage | None:
        """The usage of a tree whose every process the fork server reaped (``group``: the sum)."""
        if group is None:
            return None
        return self._usage(group, group.max_rss_bytes)

    def _usage(self, totals, rss):
        peak = max(rss, self.peak_bytes, own_cgroup_peak(self.cgroup) or 0)
        return Usage(cpu_seconds=round(totals.cpu_seconds, 6), peak_memory_bytes=int(peak) or None,
                     read_bytes=int(totals.read_bytes), written_bytes=int(totals.written_bytes))


def look_at(pid, started=None) -> Look | None:
    """The process as /proc shows it now; None if it is gone (or ``started`` names another)."""
    try:
        return _look_at(pid, started)
    except (ValueError, IndexError):  # a file cut short as the process went: gone
        return None


def _look_at(pid, started):
    stat = _read(f"{PROC}/{pid}/stat")
    if stat is None:
        return None
    # After the command name, which is in parentheses and may contain anything.
    fields = stat[stat.rfind(b")") + 2:].split()
    if len(fields) < 22:
        return None
    start = int(fields[19])
    if started is not None and start != started:
        return None  # the pid now names another process
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    zombie = fields[0] in (b"Z", b"X")
    figures = Figures(cpu_seconds=ticks / CLOCK_TICKS)
    rss = 0
    if not zombie:
        rss = int(fields[21]) * PAGE_SIZE
        figures.max_rss_bytes = _status_kb(pid, b"VmHWM:") * 1024
        io = _read(f"{PROC}/{pid}/io")  # the owner's or root's only
        if io is not None:
            counters = dict(line.split(b": ", 1) for line in io.splitlines() if b": " in line)
            figures.read_bytes = int(counters.get(b"read_bytes", 0))
            figures.written_bytes = max(0, int(counters.get(b"write_bytes", 0))
                                        - int(counters.get(b"cancelled_write_bytes", 0)))
    return Look(started=start, ppid=int(fields[1]), threads=int(fields[17]), figures=figures, rss=rss)


def resident_bytes(pid="self") -> int:
    """A process's RSS now (0 if unknown)."""
    statm = _read(f"{PROC}/{pid}/statm")
    try:
        return int(statm.split()[1]) * PAGE_SIZE
    except (AttributeError, IndexError, ValueError):
        return 0


def own_cgroup_peak(cgroup) -> int | None:
    """memory.peak of the attempt's cgroup, if it has one of its own below the worker's."""
    if not cgroup:
        return None
    ours = _read_cgroup("self")
    if ours is None or not cgroup.startswith(ours.rstrip("/") + "/"):
        return None  # ours, or one shared with processes that are not the attempt's
    peak = _read(f"{CGROUP_ROOT}{cgroup}/memory.peak")
    try:
        return int(peak)
    except (TypeError, ValueError):
        return None


def _read_cgroup(pid):
    """The process's cgroup v2 path ("0::/path" in /proc/<pid>/cgroup), or None."""
    text = _read(f"{PROC}/{pid}/cgroup")
    for line in (text or b"").splitlines():
        if line.startswith(b"0::"):
            return line[3:].decode(errors="replace")
    return None


def _children(pid, threads=1):
    """Its children: each thread lists those it started (the main thread's only, if it has one)."""
    if threads <= 1:
        return [int(child) for child in (_read(f"{PROC}/{pid}/task/{pid}/children") or b"").split()]
    try:
        threads = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        return []
    found = []
    for tid in threads:
        found.extend(int(child) for child in (_read(f"{PROC}/{pid}/task/{tid}/children") or b"").split())
    return found


def _status_kb(pid, name):
    for line in (_read(f"{PROC}/{pid}/status") or b"").splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def _read(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)
