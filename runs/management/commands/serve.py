"""`serve`: the whole orchestrator in the foreground on the embedded default.

Migrates, makes sure there is an admin login and the demo job, then runs a django-q2 cluster
node (our `qcluster --web`), which forks the ASGI web server (daphne) and the clock beside its
workers. Ctrl-C or SIGTERM stops all of it; if the web server or the node dies, the rest stops too.

Once the node runs, this process replaces itself (same pid, so the node stays its child) by a
bare interpreter running SUPERVISOR: watching a process needs no Django, and the memory the
migrations and imports took (about 80 MB) goes back to the machine. It sleeps in sigwaitinfo
until its child ends or a signal comes: no polling.
"""

import ctypes
import os
import secrets
import shlex
import signal
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from lakeflow_site.home import task_user_notice, usable_task_user, write_private

STOP_GRACE_SECONDS = 10

# argv: grace seconds, then name and pid of each child. Stdlib only (run with -I -S).
SUPERVISOR = """import os, signal, sys, time
grace, args = float(sys.argv[1]), sys.argv[2:]
children = dict(zip(args[0::2], map(int, args[1::2])))
alive = dict(children)
def reap():
    for name, pid in list(alive.items()):
        try:
            done = os.waitpid(pid, os.WNOHANG)[0]
        except ChildProcessError:
            done = pid
        if done:
            del alive[name]
def killpg(pid, signum):
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
# Blocked before the exec already (the mask is inherited): nothing sent in between is lost.
watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, watched)
exit_code = 0
while True:
    reap()
    if len(alive) < len(children):
        dead = ", ".join(name for name in children if name not in alive)
        print(f"{dead} stopped unexpectedly; shutting down", file=sys.stderr, flush=True)
        exit_code = 1
        break
    if signal.sigwaitinfo(watched).si_signo != signal.SIGCHLD:
        break
# SIGTERM to each child itself, as systemd's KillMode=mixed does: a node stops its workers, and
# the processes it forked stop when it ends (PR_SET_PDEATHSIG). To its whole process group, the
# sentinel and its workers all at once, it hung until the SIGKILL below.
for pid in alive.values():
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
deadline = time.monotonic() + grace
while alive and time.monotonic() < deadline:
    signal.sigtimedwait({signal.SIGCHLD}, max(0.01, deadline - time.monotonic()))
    reap()
def group_left(pid):
    try:
        os.killpg(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
# What the children forked ends after them: a short while for it, within the same grace.
while any(group_left(pid) for pid in children.values()) and time.monotonic() < deadline:
    time.sleep(0.05)
for pid in children.values():
    # Whatever is left in a child's process group (a worker finishing a task) goes now;
    # its task processes die with it (PR_SET_PDEATHSIG) and the reaper retries them.
    killpg(pid, signal.SIGKILL)
for pid in alive.values():
    os.waitpid(pid, 0)
print("Stopped.", flush=True)
sys.exit(exit_code)
"""


def die_with_parent():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Command(BaseCommand):
    help = "Run migrations, the web server and a cluster node in the foreground (embedded default)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo job")

    def handle(self, host, port, no_demo, **options):
        for database in settings.DATABASES:  # the main database, and the embedded broker's
            call_command("migrate", database=database, interactive=False, verbosity=0)
        self.stdout.write(f"Database ready: {settings.DATABASES['default']['NAME']}")
        self.ensure_login(no_demo)
        task_user = usable_task_user(settings.LAKEFLOW_TASK_USER, settings.LAKEFLOW_TASK_PYTHON,
                                     settings.LAKEFLOW_WORKSPACE_ROOT)
        self.stdout.write(task_user_notice(task_user))
        children = self.start_children(host, port, task_user)
        # From here signals wait in the mask (inherited through the exec) until the supervisor takes them;
        # a child that ended before is found by its first waitpid.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})
        self.stdout.write(f"Lakeflow Jobs is up: http://{host}:{port}/  (sign in as admin; Ctrl-C stops it)")
        self.supervise(children)

    def supervise(self, children):
        """Become the supervisor (never returns)."""
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        args = [str(STOP_GRACE_SECONDS)] + [str(item) for name, proc in children.items() for item in (name, proc.pid)]
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", SUPERVISOR, *args])

    def ensure_login(self, no_demo):
        User = get_user_model()
        admin = User.objects.filter(is_superuser=True).order_by("id").first()
        if admin is None:
            password = os.environ.get("LAKEFLOW_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("admin", password=password)
            path = settings.LAKEFLOW_HOME / "admin-password.txt"
            write_private(path, password + "\n")
            self.stdout.write(f"Created the superuser 'admin' with password {password} (also in {path})")
        else:
            self.stdout.write(f"Sign in as '{admin.username}' (password set earlier; "
                              f"`python manage.py changepassword {admin.username}` resets it)")
        self.stdout.write("API token: python manage.py createapitoken admin")
        if not no_demo:
            from jobs.demo import ensure_demo_job

            job, created = ensure_demo_job(admin)
            if created:
                self.stdout.write(f"Created the demo job '{job.name}' (job_id {job.id})")

    def start_children(self, host, port, task_user):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "lakeflow_site.settings"),
               "LAKEFLOW_HOME": str(settings.LAKEFLOW_HOME),
               "LAKEFLOW_WORKSPACE_ROOT": str(settings.LAKEFLOW_WORKSPACE_ROOT),
               # What usable_task_user settled on, so that the cluster does not fall back differently.
               "LAKEFLOW_TASK_USER": task_user.name if task_user.switch else ""}
        # Unset, the address is the one we listen on: task processes send their OpenLineage events there.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
        env.setdefault("LAKEFLOW_BASE_URL", f"http://{local}:{port}")
        # One child: the cluster node, which forks the web server and its clock from its own warm
        # Django (runs/management/commands/qcluster.py), so that the three share their memory.
        web = shlex.join(["--bind", host, "--port", str(port), "--access-log", os.devnull,
                          "lakeflow_site.asgi:application"])
        cluster = subprocess.Popen([sys.executable, "-m", "django", "qcluster", "--web", web],
                                   env=env, preexec_fn=die_with_parent, start_new_session=True)
        return {"cluster": cluster}
