"""`serve`'s process tree (issue 20, an idle server's memory): the serve process becomes a small
supervisor with one child, the cluster node, which forks the web server and the clock beside its
sentinel and workers; whatever part of it dies, the whole tree goes, and SIGTERM stops it cleanly."""

import os
import signal
from pathlib import Path

from tests.e2e.conftest import live_processes, start_serve, wait_until


def descendants(pid):
    found, parents = [], {pid}
    processes = live_processes()
    while True:
        more = [child for child, parent, _ in processes if parent in parents and child not in found]
        if not more:
            return found
        found += more
        parents = set(more)


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def tree_of(server):
    serve = server.procs[0].pid
    children = [child for child, parent, _ in live_processes() if parent == serve]
    return serve, children, descendants(serve)


def test_serve_supervises_one_node_which_forks_the_web_server_and_the_clock(tmp_path):
    server = start_serve(tmp_path)
    try:
        serve, children, _ = tree_of(server)
        assert "django" not in cmdline(serve)  # a bare interpreter now
        assert len(children) == 1 and "qcluster" in cmdline(children[0])
        node = children[0]
        forked = [cmdline(child) for child, parent, _ in live_processes() if parent == node]
        assert any("lakeflow_site.web" in line for line in forked)
        assert any("lakeflow_clock" in line for line in forked)
    finally:
        server.stop()


def test_a_dead_web_server_stops_the_whole_tree(tmp_path):
    server = start_serve(tmp_path)
    serve_proc = server.procs[0]
    try:
        _, _, everything = tree_of(server)
        web = next(pid for pid in everything if "lakeflow_site.web" in cmdline(pid))
        os.kill(web, signal.SIGKILL)
        assert serve_proc.wait(timeout=90) == 1
        wait_until(lambda: not set(everything) & {pid for pid, _, _ in live_processes()}, timeout=30,
                   what="every process of the tree to end")
        assert "stopped unexpectedly" in server.log_text()
    finally:
        server.stop()


def test_sigterm_stops_the_whole_tree(tmp_path):
    server = start_serve(tmp_path)
    serve_proc = server.procs[0]
    try:
        _, _, everything = tree_of(server)
        serve_proc.send_signal(signal.SIGTERM)
        assert serve_proc.wait(timeout=90) == 0
        wait_until(lambda: not set(everything) & {pid for pid, _, _ in live_processes()}, timeout=30,
                   what="every process of the tree to end")
        assert "Stopped." in server.log_text()
        # The node stopped its workers itself, within the grace (not killed when it ran out).
        assert "has stopped." in server.log_text()
    finally:
        server.stop()
