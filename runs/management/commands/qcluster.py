"""django-q2's qcluster, plus this node's clock process (see runs/clock.py) and, for `serve`,
the web server.

Both are forked from this process, before django-q2 forks its sentinel and workers, rather than
started as new interpreters: all of them share the pages of what was imported here (Django, the
apps, the models). The objects that exist at the first fork are frozen (gc.freeze), so that no
process's garbage collector writes to them and copies those pages (issue 20: an idle node's
memory)."""

import ctypes
import gc
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from django.core.management import call_command
from django.db import connections
from django_q.management.commands.qcluster import Command as QClusterCommand

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15

log = logging.getLogger(__name__)


def die_with_parent():
    # If this qcluster is SIGKILLed, its clock (and web server) must not live on as orphans.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def set_title(title):
    """Show title as this process's command line (/proc/<pid>/cmdline, ps) and name, within the
    length of the command line it was started with; best effort."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(title.split()[-1].encode()[:15]), 0, 0, 0)
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
        if end - start < 16:
            return
        text = title.encode() if len(title) < end - start else title.split()[-1].encode()[:end - start - 1]
        ctypes.memmove(start, text.ljust(end - start, b"\0"), end - start)
    except (OSError, ValueError, IndexError):
        pass


_frozen = []


def fork_child(title, run):
    """Run run() in a child process titled title; its pid. The child dies with this process."""
    if not _frozen:
        # What the clock and the workers will need, imported once here: their pages stay shared.
        import runs.management.commands.lakeflow_clock  # noqa: F401
        import runs.worker  # noqa: F401

        gc.collect()
        gc.freeze()
        _frozen.append(True)
    connections.close_all()  # a connection must not be shared across a fork
    sys.stdout.flush()  # nor buffered output, or both would write it
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        die_with_parent()
        if os.getppid() != parent:  # this node died before prctl: no orphan
            code = 0
        else:
            set_title(title)
            run()
            code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("%s stopped", title)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never back into the cluster's code


def leave_out_unused_tls(daphne_args, redis_url=""):
    """Before Twisted is imported: a web server that serves plain HTTP (TLS is the proxy's, as in
    deploy/) does without pyOpenSSL, and Twisted then leaves out its TLS support, which imports
    pyOpenSSL and cryptography's x509 (~8 MB of an idle web process). An `ssl:` endpoint keeps it,
    and so does a Redis URL asking for OCSP stapling (redis-py checks it with pyOpenSSL)."""
    if not any("ssl:" in arg for arg in daphne_args) and "ocsp" not in (redis_url or "").lower():
        sys.modules.setdefault("OpenSSL", None)  # None: `import OpenSSL` raises ImportError


def run_web(args):
    """The web server (lakeflow_site/web.py: daphne) with daphne's command-line arguments."""
    # Settings were read for a qcluster, whose processes keep their connections open; the web
    # server's threads come and go with requests, so its connections close after each (a kept
    # one would outlive its thread: lakeflow_site/settings.py).
    for database in connections.settings.values():
        database["CONN_MAX_AGE"] = 0
    from django.conf import settings

    leave_out_unused_tls(args, settings.REDIS_URL)
    import lakeflow_site.web  # noqa: F401  (its changes to Twisted)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(args)


def stop_when_it_ends(pid, what):
    """A thread: when the child pid ends, this node stops (SIGTERM to itself, as from outside)."""
    def watch():
        os.waitpid(pid, 0)
        log.error("the %s stopped: stopping this node", what)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name=f"watch-{what}", daemon=True).start()


class Command(QClusterCommand):
    help = "Starts a django-q2 cluster node and its standby clock."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--web", metavar="DAPHNE_ARGS", default=None,
                            help="also run the web server with these daphne arguments (as `serve` does); "
                                 "the node stops if it stops")

    def handle(self, *args, **options):
        from django.conf import settings

        from lakeflow_site.home import task_user_notice, usable_task_user

        children = []
        if options.get("web"):  # before anything below changes the settings
            web_args = shlex.split(options["web"])
            children.append(fork_child("python -m lakeflow_site.web", lambda: run_web(web_args)))
        # Before the workers fork: they run tasks as whoever this settles on.
        user = settings.LAKEFLOW_TASK_USER = usable_task_user(
            settings.LAKEFLOW_TASK_USER, settings.LAKEFLOW_TASK_PYTHON, settings.LAKEFLOW_WORKSPACE_ROOT)
        logging.getLogger(__name__).log(logging.INFO if user.switch else logging.WARNING, task_user_notice(user))
        children.append(fork_child("python -m django lakeflow_clock", lambda: call_command("lakeflow_clock")))
        try:
            super().handle(*args, **options)
        except BaseException:
            for pid in children:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            raise
        if options.get("web"):
            stop_when_it_ends(children[0], "web server")
        # django-q2's handle returns once the cluster is up; this process then lives until the
        # cluster stops (multiprocessing joins the sentinel at exit), and its children with it:
        # they get SIGTERM from PR_SET_PDEATHSIG when we exit, however we exit.
