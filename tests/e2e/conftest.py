"""Real processes for end-to-end tests: `manage.py serve` on SQLite, and a web server plus
`qcluster` node on Postgres + Redis, each driven over HTTP with the official databricks-sdk."""

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# Scripts the e2e jobs run, written into each server's workspace root.
SCRIPTS = {
    "ok.py": """
        import sys, time
        print("ok", " ".join(sys.argv[1:]), flush=True)
        if len(sys.argv) > 1 and sys.argv[1].replace(".", "").isdigit():
            time.sleep(float(sys.argv[1]))
    """,
    "fail.py": """
        print("about to fail", flush=True)
        raise ValueError("boom from fail.py")
    """,
    "fail_until_marker.py": """
        # Fails until the marker file exists; with "create" it creates it first (so a retry passes).
        import os, sys
        marker = sys.argv[1]
        if not os.path.exists(marker):
            if len(sys.argv) > 2 and sys.argv[2] == "create":
                open(marker, "w").close()
            raise RuntimeError(f"marker {marker} is missing")
        print("marker found", flush=True)
    """,
    "sleeper.py": """
        # Writes "pid ppid" to argv[1], then sleeps; exits at once if argv[2] (a marker) exists.
        import os, sys, time
        if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
            print("marker exists, quick exit", flush=True)
            sys.exit(0)
        if len(sys.argv) > 2:
            open(sys.argv[2], "w").close()
        with open(sys.argv[1], "w") as f:
            f.write(f"{os.getpid()} {os.getppid()}")
        print("sleeping", flush=True)
        time.sleep(120)
    """,
    "produce.py": """
        # Sets task values the Databricks way: dbutils is a builtin in every task process.
        import sys
        dbutils.jobs.taskValues.set("n", int(sys.argv[1]))
        dbutils.jobs.taskValues.set("items", [{"name": "ada"}, {"name": "alan"}, {"name": "grace"}])
        print("produced", sys.argv[1], flush=True)
    """,
    "consume.py": """
        import sys
        print("consumed", " ".join(sys.argv[1:]), "values:", dbutils.jobs.taskValues.get("producer", "n"), flush=True)
    """,
    "item.py": """
        # One for-each iteration; fails for the element named in argv[2] until argv[3] exists.
        import os, sys
        print("item", sys.argv[1], flush=True)
        if len(sys.argv) > 3 and sys.argv[1] == sys.argv[2] and not os.path.exists(sys.argv[3]):
            raise RuntimeError(f"item {sys.argv[1]} is broken")
    """,
    "rendezvous.py": """
        # Marks argv[2] in directory argv[1], then waits (at most 120 s) until argv[3] marks are
        # there: tasks that must overlap prove it by finishing only together, however slow the machine.
        import os, sys, time
        directory, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
        os.makedirs(directory, exist_ok=True)
        open(os.path.join(directory, name), "w").close()
        deadline = time.monotonic() + 120
        while len(os.listdir(directory)) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {os.listdir(directory)} of {count} met")
            time.sleep(0.05)
        print("item", name, flush=True)
    """,
    "widgets_notebook.py": """
        # Databricks notebook source
        # MAGIC %md
        # MAGIC # A notebook with widgets

        # COMMAND ----------

        dbutils.widgets.text("greeting", "hello")
        who = dbutils.widgets.get("who")
        print(dbutils.widgets.get("greeting"), who)
        dbutils.jobs.taskValues.set("who", who)

        # COMMAND ----------

        dbutils.notebook.exit(f"{dbutils.widgets.get('greeting')} {who}")

        # COMMAND ----------

        raise RuntimeError("cells after dbutils.notebook.exit must not run")
    """,
    "report.sql": """
        -- Two statements and a parameter bound as :limit_n
        CREATE OR REPLACE TABLE e2e_numbers AS SELECT range AS n FROM range(10);
        SELECT n, n * n AS square FROM e2e_numbers WHERE n < CAST(:limit_n AS INTEGER) ORDER BY n;
    """,
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # the server may not be up yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# How long the SDK's run waiter (`run_now(...).result()`, wait_get_run_job_terminated_or_skipped)
# sleeps between two polls here, at most.
SDK_POLL_SECONDS = 0.2


class FinerSdkPolls:
    """`time` as databricks.sdk.service.jobs sees it in these tests: its run waiter sleeps 1 s, 2 s,
    ... 10 s (each plus up to 1 s of jitter) between polls, so a run that ends after 3 s is seen
    some 6 s later, and the e2e suite waited minutes on that in all. The same polls of runs/get,
    the same end states and timeout: only no poll is more than SDK_POLL_SECONDS after the last."""

    time = staticmethod(time.time)

    @staticmethod
    def sleep(seconds):
        time.sleep(min(seconds, SDK_POLL_SECONDS))


@pytest.fixture(scope="session", autouse=True)
def finer_sdk_polls():
    from databricks.sdk.service import jobs as sdk_jobs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdk_jobs, "time", FinerSdkPolls)
        yield


class Server:
    """A running orchestrator: its URL, an API token, its workspace dir and its processes."""

    def __init__(self, name, env, commands, workspace, database_ready=None):
        """database_ready: whether the database is as the processes make it before they serve (a
        first start's migrate and admin login): the API token is made from then on, while the web
        server comes up, not after (a Django start saved per server). None: it is from the start."""
        self.name, self.env, self.workspace = name, env, workspace
        self.port = int(env["LAKEFLOW_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = []
        self.procs = []
        self.labels = []
        Path(env["LAKEFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
        for label, argv in commands:
            self.start(label, argv)
        if database_ready is not None:
            wait_until(lambda: database_ready(self) or self.responds(), timeout=60,
                       what=f"{name}'s database to be ready")
        making = subprocess.Popen([PYTHON, "manage.py", "createapitoken", "e2e", "--superuser"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(self.responds, timeout=60, what=f"{name} to answer HTTP")
        finally:
            made, errors = making.communicate(timeout=120)
        assert making.returncode == 0, errors
        self.token = made.strip().splitlines()[-1]

    def start(self, label, argv):
        """Start one more process of this server (a web process, a cluster node, ...)."""
        log = open(Path(self.env["LAKEFLOW_HOME"]) / f"{label}.log", "ab")
        self.logs.append(log)
        self.labels.append(label)
        self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))
        return self.procs[-1]

    def kill(self, proc, sig=signal.SIGKILL):
        """Kill one process and everything it started, as a crashed machine would lose them."""
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
        index = self.procs.index(proc)
        del self.procs[index], self.labels[index]

    def responds(self):
        for proc in self.procs:
            assert proc.poll() is None, f"{self.name} process exited early: {self.log_text()[-3000:]}"
        return requests.get(self.url + "/.well-known/databricks-config", timeout=2).status_code == 200

    def manage(self, *args):
        done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def client(self):
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.url, token=self.token)

    def script(self, name):
        return str(self.workspace / name)

    def log_text(self):
        home = Path(self.env["LAKEFLOW_HOME"])
        return "\n".join(p.read_text(errors="replace") for p in sorted(home.glob("*.log")))

    def stop(self):
        # SIGTERM to each main process only, as systemd's KillMode=mixed (deploy/systemd) and
        # `docker stop` send it: a qcluster whose sentinel and workers all get SIGTERM at once
        # does not stop in time. Whatever is left of a process group afterwards is killed.
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        for log in self.logs:
            log.close()


def base_env(home, workspace, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="lakeflow_site.settings",
        LAKEFLOW_HOME=str(home),
        LAKEFLOW_WORKSPACE_ROOT=str(workspace),
        LAKEFLOW_PORT=str(port),
        LAKEFLOW_BASE_URL=f"http://127.0.0.1:{port}",  # where task processes send OpenLineage events
        LAKEFLOW_HEARTBEAT_SECONDS="1",
        LAKEFLOW_LOST_AFTER_SECONDS="10",
        LAKEFLOW_WORKERS="4",
        LAKEFLOW_ADMIN_PASSWORD="e2e-password",
        # A Postgres warehouse for sql_task, beside the embedded DuckDB `default`.
        LAKEFLOW_WAREHOUSES=f"pg={postgres_admin_dsn()[0]}",
        PYTHONUNBUFFERED="1",
        # The tests run as root and keep their scripts and markers in root's temporary directories:
        # tasks run as the server's user here. test_task_isolation.py runs them as another user.
        LAKEFLOW_TASK_USER="",
        # git_source repositories the tests make under pytest's temporary directory (LAKEFLOW_HOME
        # lies there too, and stays refused: never inside LAKEFLOW_HOME or LAKEFLOW_TASK_HOME).
        LAKEFLOW_GIT_LOCAL_ROOTS=tempfile.gettempdir(),
    )
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.pop("LAKEFLOW_Q_SYNC", None)
    return env


def make_workspace(tmp):
    workspace = tmp / "workspace"
    workspace.mkdir()
    for name, body in SCRIPTS.items():
        (workspace / name).write_text(textwrap.dedent(body).lstrip("\n"))
    return workspace


def postgres_admin_dsn():
    import psycopg

    for user in ("postgres", "root"):
        dsn = f"postgresql://{user}@127.0.0.1:5432/test"
        try:
            with psycopg.connect(dsn, connect_timeout=3):
                return dsn, user
        except psycopg.OperationalError:
            continue
    raise RuntimeError("PostgreSQL on 127.0.0.1:5432 accepts neither user postgres nor root")


def start_serve(home, name="serve (SQLite)", *options, extra_env=None):
    """`manage.py serve` (the embedded default) with its files under `home`. Its databases are
    copies of this process's migrated ones (see migrated_sqlite_files): `serve` finds nothing to
    migrate and goes on as on a first start (admin login, demo job, secret key of its own)."""
    return _start_serve(home, name, options, extra_env, premigrated=True)


def _start_serve(home, name, options, extra_env, premigrated):
    port = free_port()
    env = {**base_env(home / "home", make_workspace(home), port), **(extra_env or {})}
    home_dir = Path(env["LAKEFLOW_HOME"])
    if premigrated and not SQLITE_LAYOUT_KEYS & set(extra_env or ()) and not any(home_dir.glob("*.sqlite3*")):
        # A new home only (a home with a database keeps it). keep_private makes the home 0700 (and
        # whatever is in it 0600) when serve starts.
        home_dir.mkdir(parents=True, exist_ok=True)
        for source in migrated_sqlite_files():
            copy_private(source, home_dir / source.name)
    return Server(name, env, [("serve", [PYTHON, "manage.py", "serve", "--port", str(port), *options])],
                  home / "workspace", database_ready=serve_is_starting_its_node)


def serve_is_starting_its_node(server):
    """`serve` has migrated, made its admin login and demo job, and now starts the cluster node
    (its own writes to the database are done)."""
    return "Lakeflow Jobs is up" in (Path(server.env["LAKEFLOW_HOME"]) / "serve.log").read_text(errors="replace")


# Settings that change which databases the embedded default has or where: a server given one of
# these migrates its own.
SQLITE_LAYOUT_KEYS = {"DATABASE_URL", "LAKEFLOW_Q_SYNC", "LAKEFLOW_HOME", "DJANGO_SETTINGS_MODULE"}

MIGRATE_EVERY_DATABASE = """
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
for database in settings.DATABASES:  # as `serve` does: the main database, and the embedded broker's
    call_command("migrate", database=database, interactive=False, verbosity=0)
"""

_sqlite_template = []  # this process's migrated SQLite files, made by the first start_serve that wants them


def migrated_sqlite_files():
    """db.sqlite3 and broker.sqlite3 as `serve`'s own migrate leaves them on a first start, made
    once per process in a home of their own (removed at exit): only the two database files are
    copied, never its secret key or anything else of a home. The migrations read no environment
    but the databases' places, so a copy holds the same tables, rows and sqlite_sequence as a
    migrate of its own. Each file is checkpointed and closed first: nothing is left in a -wal file."""
    if not _sqlite_template:
        import atexit

        base = Path(tempfile.mkdtemp(prefix="lakeflow-e2e-sqlite-template-"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        env = base_env(base / "home", base / "workspace", free_port())
        migrate = subprocess.run([PYTHON, "-c", MIGRATE_EVERY_DATABASE], cwd=ROOT, capture_output=True, text=True,
                                 timeout=300, env=env)
        assert migrate.returncode == 0, migrate.stderr
        files = [base / "home" / "db.sqlite3", base / "home" / "broker.sqlite3"]
        for path in files:
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()  # the last connection: SQLite removes the -wal and -shm files
            leftover = [p for p in (Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists() and p.stat().st_size]
            assert not leftover, f"{leftover} still hold(s) writes to {path}"
        _sqlite_template.extend(files)
    return _sqlite_template


def copy_private(source, target):
    """Copy a file to a new one that only its owner can read (the home's files are 0600)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out)


def live_processes():
    """(pid, parent pid, session id) of every process that is not a zombie, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid pgrp session ...": comm may hold spaces, so split after its paren.
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found.append((int(entry.name), int(fields[1]), int(fields[3])))
    return found


CHROMIUM = "/usr/bin/chromium"
BROWSER_WAIT_MS = 60_000


class SharedBrowser:
    """One Chromium (and Playwright driver) for a stretch of browser tests, launched by the first
    of them and closed after the last (see pytest_runtest_teardown). Never kept beyond them: while
    Playwright's sync API is up, the main thread's asyncio loop counts as running, so asyncio.run
    and Django's async-unsafe guard (SynchronousOnlyOperation) would fail in every later test."""

    playwright = chromium = None

    def get(self):
        if self.chromium is None:
            from playwright.sync_api import expect, sync_playwright

            # Every expectation may wait for a server on a busy machine (a form's POST, a page's fetch):
            # Playwright's 5 s default is a timing assumption, not a guarantee.
            expect.set_options(timeout=BROWSER_WAIT_MS)
            self.playwright = sync_playwright().start()
            try:
                self.chromium = self.playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            except BaseException:
                self.close()
                raise
        return self.chromium

    def close(self):
        chromium, playwright = self.chromium, self.playwright
        self.chromium = self.playwright = None
        try:
            if chromium is not None:
                chromium.close()
        finally:
            if playwright is not None:
                playwright.stop()


_shared_browser = SharedBrowser()


def uses_browser(item):
    """An e2e test that drives Chromium (tests/dashboard's `browser` is a signed-in test client:
    moving those would put database tests among transactional ones, whose flush removes the rows
    data migrations made, such as the admins group)."""
    return "browser" in getattr(item, "fixturenames", ()) and Path(str(item.path)).parent == Path(__file__).parent


@pytest.fixture
def browser():
    """The Chromium of this stretch of browser tests (shared: launching one costs seconds)."""
    return _shared_browser.get()


@pytest.fixture
def page(browser):
    """A page in a browser context of its own: no cookies or storage from another test."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test reports where its page was and what it showed (a failure that only
    a busy machine produces is diagnosed from the report, not by running it again)."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.failed and call.when == "call" and page is not None:
        try:
            text = page.inner_text("body", timeout=5_000)
            seen = f"url: {page.url}\ntitle: {page.title()}\n\n{text[:3_000]}"
        except Exception as exc:  # the page itself may be what broke
            seen = f"url: {page.url}\n(the page could not be read: {exc})"
        report.sections.append(("the browser's page at the failure", seen))
    return report


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by parametrized fixtures
def pytest_collection_modifyitems(items):
    """The browser tests run one after another, where the first of them was collected (their
    order kept), so that one Chromium serves them all instead of one per module."""
    browsing = [item for item in items if uses_browser(item)]
    if browsing:
        first = items.index(browsing[0])
        others = [item for item in items if not uses_browser(item)]
        items[:] = others[:first] + browsing + others[first:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)  # the test's fixtures are torn down (its browser context closed) here
    finally:
        if nextitem is None or not uses_browser(nextitem):
            _shared_browser.close()


def pytest_sessionfinish(session):
    _shared_browser.close()  # an interrupted session (-x, Ctrl-C) does not reach the last teardown


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory):
    """The session's shared `serve`, started on an empty home: the first-start path (serve's
    own migrate of every database) stays covered."""
    server = _start_serve(tmp_path_factory.mktemp("serve-sqlite"), "serve (SQLite)", (), None, premigrated=False)
    yield server
    server.stop()


QCLUSTER = [PYTHON, "manage.py", "qcluster"]


def start_scaleout(home, nodes, redis_url="redis://127.0.0.1:6379/0", extra_env=None):
    """A fresh Postgres database, Redis, one web process and `nodes` qcluster nodes, with their
    files under `home`; returns (server, database name). `redis_url`: a Redis of the test's own,
    one it may kill."""
    import psycopg

    admin_dsn, user = postgres_admin_dsn()
    database = f"lakeflow_e2e_{secrets.token_hex(4)}"
    port = free_port()
    env = base_env(home / "home", make_workspace(home), port)
    Path(env["LAKEFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    env.update(
        DATABASE_URL=f"postgresql://{user}@127.0.0.1:5432/{database}",
        REDIS_URL=redis_url,
        LAKEFLOW_CLUSTER_NAME=f"lakeflow-{database}",
        **scale_out_keys(),  # required in this mode: the same keys for every process
    )
    env.update(extra_env or {})
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{migrated_template(env, user)}"')
    web = ("web", [PYTHON, "-m", "lakeflow_site.web", "--bind", "127.0.0.1", "--port", str(port), "lakeflow_site.asgi:application"])
    nodes = [(f"qcluster-{i}", QCLUSTER) for i in range(1, nodes + 1)]
    # `serve` makes the admin login itself; the scale-out mode has createsuperuser for that (run
    # while the processes start: it needs only the migrated database).
    made = subprocess.Popen([PYTHON, "manage.py", "createsuperuser", "--noinput", "--username", "admin",
                             "--email", "admin@example.com"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**env, "DJANGO_SUPERUSER_PASSWORD": env["LAKEFLOW_ADMIN_PASSWORD"]})
    try:
        server = Server(f"web + {len(nodes)} qcluster (Postgres + Redis)", env, [web, *nodes], home / "workspace")
    finally:
        _, made_errors = made.communicate(timeout=120)
    assert made.returncode == 0, made_errors
    server.database_url = env["DATABASE_URL"]
    return server, database


_template = []  # this process's migrated database, made by the first start_scaleout


def migrated_template(env, user):
    """The name of a database that `manage.py migrate` has brought up to date, made once per
    process and dropped at its exit. Each scale-out database is a copy of it (CREATE DATABASE
    ... TEMPLATE, a fraction of a second): the same tables, rows and sequences as a migrate of its
    own (the migrations read no environment), without a Django start and 40 migrations each time.
    Its name holds this process's pid: templates of processes gone without their exit handler
    (SIGKILL) are dropped here."""
    if not _template:
        import atexit

        import psycopg

        template = f"lakeflow_e2e_template_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(postgres_admin_dsn()[0], autocommit=True) as conn:
            for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'lakeflow_e2e_template_%'"):
                parts = name.split("_")  # lakeflow, e2e, template, pid, random
                if len(parts) == 5 and parts[3].isdigit() and not Path(f"/proc/{parts[3]}").exists():
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{template}"')
        atexit.register(drop_database, template)
        migrate = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=300, env={
                                     **env, "DATABASE_URL": f"postgresql://{user}@127.0.0.1:5432/{template}"})
        assert migrate.returncode == 0, migrate.stderr
        _template.append(template)
    return _template[0]


def secrets_key():
    """A new LAKEFLOW_SECRETS_KEY (a Fernet key), as the scale-out mode requires one."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def scale_out_keys():
    """New SECRET_KEY and LAKEFLOW_SECRETS_KEY, both of which the scale-out mode requires."""
    return {"SECRET_KEY": secrets.token_urlsafe(50), "LAKEFLOW_SECRETS_KEY": secrets_key()}


def drop_database(database):
    import psycopg

    with psycopg.connect(postgres_admin_dsn()[0], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def scaleout_server(tmp_path_factory):
    """Postgres + Redis, a web process and a qcluster node, as in the scale-out mode."""
    server, database = start_scaleout(tmp_path_factory.mktemp("scaleout"), nodes=1)
    yield server
    server.stop()
    drop_database(database)


@pytest.fixture
def two_node_server(tmp_path_factory):
    """Two qcluster nodes (each with its standby clock) on one Postgres database and Redis, for
    one test: it may kill a node. Schedule slots missed while the clock's lease moves fire late
    within 10 minutes, so that however slowly a busy machine takes over, none is skipped."""
    server, database = start_scaleout(tmp_path_factory.mktemp("two-nodes"), nodes=2,
                                      extra_env={"LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS": "600"})
    yield server
    server.stop()
    drop_database(database)


@pytest.fixture(scope="session")
def shared_two_node_server(tmp_path_factory):
    """The same, shared by the tests that kill no process and look only at their own jobs' runs."""
    server, database = start_scaleout(tmp_path_factory.mktemp("shared-two-nodes"), nodes=2)
    yield server
    server.stop()
    drop_database(database)


@pytest.fixture(params=["sqlite", "scaleout"], scope="session")
def server(request):
    return request.getfixturevalue(f"{request.param}_server")
