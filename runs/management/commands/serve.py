"""`serve`: the whole orchestrator in the foreground on the embedded default.

Migrates, makes sure there is an admin login and the demo job, then runs two children: the
ASGI web server (daphne) and a django-q2 cluster node (our `qcluster`, which brings the
clock). Ctrl-C or SIGTERM stops both; if either dies, the other is stopped too.
"""

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from lakeflow_site.home import task_user_notice, usable_task_user, write_private

STOP_GRACE_SECONDS = 10


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
        stopping = []

        def on_signal(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write(f"Lakeflow Jobs is up: http://{host}:{port}/  (sign in as admin; Ctrl-C stops it)")
        self.stdout.flush()
        exit_code = 0
        while not stopping:
            dead = [name for name, proc in children.items() if proc.poll() is not None]
            if dead:
                self.stderr.write(f"{', '.join(dead)} stopped unexpectedly; shutting down")
                exit_code = 1
                break
            time.sleep(0.2)
        self.stop_children(children)
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)

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
        common = dict(env=env, preexec_fn=die_with_parent, start_new_session=True)
        web = subprocess.Popen(
            [sys.executable, "-m", "lakeflow_site.web", "--bind", host, "--port", str(port),
             "--access-log", os.devnull, "lakeflow_site.asgi:application"],
            **common,
        )
        cluster = subprocess.Popen([sys.executable, "-m", "django", "qcluster"], **common)
        return {"web server": web, "cluster": cluster}

    def stop_children(self, children):
        for proc in children.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in children.values():
            # Whatever is left in a child's process group (a worker finishing a task) goes now;
            # its task processes die with it (PR_SET_PDEATHSIG) and the reaper retries them.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
