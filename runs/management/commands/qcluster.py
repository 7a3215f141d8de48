"""django-q2's qcluster, plus this node's clock process (see runs/clock.py)."""

import ctypes
import logging
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
        from django.conf import settings

        from lakeflow_site.home import task_user_notice, usable_task_user

        # Before the workers fork: they run tasks as whoever this settles on.
        user = settings.LAKEFLOW_TASK_USER = usable_task_user(
            settings.LAKEFLOW_TASK_USER, settings.LAKEFLOW_TASK_PYTHON, settings.LAKEFLOW_WORKSPACE_ROOT)
        logging.getLogger(__name__).log(logging.INFO if user.switch else logging.WARNING, task_user_notice(user))
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
