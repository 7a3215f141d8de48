"""django-q2's qcluster, plus this node's clock process (see runs/clock.py)."""

import ctypes
import os
import signal
import subprocess
import sys

from django_q.management.commands.qcluster import Command as QClusterCommand

PR_SET_PDEATHSIG = 1


def die_with_parent():
    # If this qcluster is SIGKILLed, its clock must not live on as an orphan.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Command(QClusterCommand):
    help = "Starts a django-q2 cluster node and its standby clock."

    def handle(self, *args, **options):
        clock = subprocess.Popen(
            [sys.executable, "-m", "django", "lakeflow_clock"],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "lakeflow_site.settings")},
            preexec_fn=die_with_parent,
        )
        try:
            super().handle(*args, **options)
        except BaseException:
            clock.terminate()
            raise
        # django-q2's handle returns once the cluster is up; this process then lives until the
        # cluster stops (multiprocessing joins the sentinel at exit), and the clock with it: it
        # gets SIGTERM from PR_SET_PDEATHSIG when we exit, however we exit.
