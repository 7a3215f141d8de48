"""The scale-out web process keeps no Postgres connection after its requests (the suite once ran
Postgres out of its 100 connections): under ASGI each request's sync code runs in a thread of
its own, and a persistent connection outlived its thread, so the web process closes its
connection at the end of each request (lakeflow_site/settings.py) and only the cluster's
processes keep theirs."""

import os
from pathlib import Path

from tests.e2e.conftest import wait_until

POSTGRES_PORT = 5432


def postgres_connections_of(pid):
    """How many TCP connections the process has open to 127.0.0.1:5432, from /proc (its socket
    inodes matched against the kernel's TCP table)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == POSTGRES_PORT and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                count += 1
    return count


def test_the_web_process_keeps_no_connection_after_its_requests(scaleout_server):
    server = scaleout_server
    (web,) = [proc for proc, label in zip(server.procs, server.labels) if label == "web"]
    w = server.client()
    for _ in range(60):  # each a request of its own, each in a thread of its own (one page each:
        # the SDK's list iterators would read every page of a server other tests filled)
        assert isinstance(w.api_client.do("GET", "/api/2.2/jobs/list", query={"limit": 1}), dict)
        assert isinstance(w.api_client.do("GET", "/api/2.2/jobs/runs/list", query={"limit": 1}), dict)
    # Each request's connection closes at the request's end (just after its answer is sent); a
    # kept one stays open as long as the process (17 after 300 requests).
    wait_until(lambda: postgres_connections_of(web.pid) == 0, timeout=60,
               what="the web process to close the connections of its finished requests")
