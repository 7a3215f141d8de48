"""Settings read from the environment, with the embedded default for everything.

Embedded default: SQLite and logs under LAKEFLOW_HOME, the django-q2 ORM broker.
DATABASE_URL switches to Postgres, REDIS_URL to the django-q2 Redis broker.
Every variable read here is listed in .env.example.
"""

import os
import secrets
import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from lakeflow_site.home import (
    create_private_once,
    embedded_warehouse,
    keep_private,
    prepare_fs_roots,
    prepare_task_home,
    task_environment_names,
    task_identity,
)
from runs.executors.workspace_paths import Roots


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
# The server's own files: the SQLite database, the secret key, the admin password. Its owner
# only (0700, files 0600): task processes, which run as another user where the server can
# switch to one (LAKEFLOW_TASK_USER), cannot read or change them.
LAKEFLOW_HOME = Path(env_str("LAKEFLOW_HOME", ".lakeflow")).resolve()
keep_private(LAKEFLOW_HOME)
# What task processes may use: each attempt's directory and the embedded DuckDB warehouse.
LAKEFLOW_TASK_HOME = Path(env_str("LAKEFLOW_TASK_HOME", f"{LAKEFLOW_HOME}-tasks")).resolve()
# Where relative task file paths resolve; the directory `serve` was started in by default. Task
# files (python_file, notebook_path, sql_task file.path) must lie inside it or inside one of
# LAKEFLOW_TASK_FILE_ROOTS, and never in LAKEFLOW_HOME or LAKEFLOW_TASK_HOME.
LAKEFLOW_WORKSPACE_ROOT = Path(env_str("LAKEFLOW_WORKSPACE_ROOT", os.getcwd())).resolve()
LAKEFLOW_TASK_FILE_ROOTS = [Path(p).resolve() for p in env_list("LAKEFLOW_TASK_FILE_ROOTS", [])]
# Directories (joined by os.pathsep) whose repositories a git_source may name by local path or
# file:// URL; never LAKEFLOW_HOME or LAKEFLOW_TASK_HOME. Empty: remote repositories only.
LAKEFLOW_GIT_LOCAL_ROOTS = [Path(p.strip()).resolve()
                            for p in env_str("LAKEFLOW_GIT_LOCAL_ROOTS").split(os.pathsep) if p.strip()]
# The OS user task processes run as. Unset: "nobody" when the server runs as root (it can
# switch), else the server's own user; empty: the server's own user, always.
LAKEFLOW_TASK_USER = task_identity(os.environ.get("LAKEFLOW_TASK_USER"))
# The Python interpreter task processes run (the task user must be able to run it).
LAKEFLOW_TASK_PYTHON = env_str("LAKEFLOW_TASK_PYTHON", sys.executable)
# Names of further server variables task processes may see (they see an allow-list: see README).
LAKEFLOW_TASK_ENV = task_environment_names(env_list("LAKEFLOW_TASK_ENV", []))
prepare_task_home(LAKEFLOW_HOME, LAKEFLOW_TASK_HOME, LAKEFLOW_TASK_USER)
# Where Databricks paths live on this machine: /Volumes/<catalog>/<schema>/<volume>/...,
# /Workspace/... and dbfs:/... (also /dbfs/...). Tasks read and write them, so they sit in the
# tasks' area by default (LAKEFLOW_HOME is the server's alone).
LAKEFLOW_FS_ROOTS = Roots(
    volumes=Path(env_str("LAKEFLOW_VOLUMES_DIR", str(LAKEFLOW_TASK_HOME / "Volumes"))).resolve(),
    workspace=Path(env_str("LAKEFLOW_WORKSPACE_FILES_DIR", str(LAKEFLOW_TASK_HOME / "Workspace"))).resolve(),
    dbfs=Path(env_str("LAKEFLOW_DBFS_DIR", str(LAKEFLOW_TASK_HOME / "dbfs"))).resolve(),
)
prepare_fs_roots(LAKEFLOW_FS_ROOTS, LAKEFLOW_TASK_USER, LAKEFLOW_HOME, LAKEFLOW_TASK_HOME)
# Seconds without a heartbeat after which an attempt's worker counts as dead.
LAKEFLOW_HEARTBEAT_SECONDS = env_float("LAKEFLOW_HEARTBEAT_SECONDS", 5.0)
LAKEFLOW_LOST_AFTER_SECONDS = env_float("LAKEFLOW_LOST_AFTER_SECONDS", 20.0)
# Fork Python attempts from a warm process per worker (runs/executors/forkserver.py) instead of
# starting an interpreter for each; false starts every attempt as a fresh interpreter.
LAKEFLOW_FORK_SERVER = env_bool("LAKEFLOW_FORK_SERVER", True)
# How long a worker may go on running the attempts its finishes make ready (runs/dispatch.py
# Handoff) before it leaves the next to the broker; 0 sends every attempt through the broker.
LAKEFLOW_HANDOFF_SECONDS = env_float("LAKEFLOW_HANDOFF_SECONDS", 5.0)
# How many attempts one planner step hands to the broker at once; the rest of a wide step waits
# in the database for the run's finishing workers to take them (runs/transitions.py start_attempts).
LAKEFLOW_DISPATCH_AHEAD = max(1, env_int("LAKEFLOW_DISPATCH_AHEAD", 4 * env_int("LAKEFLOW_WORKERS", 4)))


def _uv_binary():
    """The uv installed with this server (the uv package ships its binary)."""
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return "uv"  # from PATH; a build then fails with "No such file" if there is none


def _warehouses(text):
    """sql_task warehouses by id: "id=url,id2=url2"; `default` is the embedded DuckDB file."""
    found = {"default": f"duckdb:///{embedded_warehouse(LAKEFLOW_TASK_HOME)}"}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise ValueError(f"LAKEFLOW_WAREHOUSES: expected id=url, got {item!r}")
        found[name.strip()] = url.strip()
    return found


# Task environments (environments[].spec, task libraries): built with uv under
# LAKEFLOW_TASK_HOME/environments, removed when no task used them for this many days.
LAKEFLOW_ENVIRONMENT_KEEP_DAYS = env_float("LAKEFLOW_ENVIRONMENT_KEEP_DAYS", 7.0)
if not LAKEFLOW_ENVIRONMENT_KEEP_DAYS > 0:  # 0 would remove every environment at each clean-up
    raise ImproperlyConfigured(f"LAKEFLOW_ENVIRONMENT_KEEP_DAYS={LAKEFLOW_ENVIRONMENT_KEEP_DAYS}: must be more than 0 "
                               "(days; e.g. 0.5 keeps an environment half a day after its last use)")
LAKEFLOW_UV = env_str("LAKEFLOW_UV", "") or _uv_binary()

# Continuous jobs: after n failed runs in a row the next waits base * 2^(n-1) seconds, at most max.
LAKEFLOW_CONTINUOUS_BACKOFF_SECONDS = env_float("LAKEFLOW_CONTINUOUS_BACKOFF_SECONDS", 10.0)
LAKEFLOW_CONTINUOUS_BACKOFF_MAX_SECONDS = env_float("LAKEFLOW_CONTINUOUS_BACKOFF_MAX_SECONDS", 600.0)

# The address users reach this server at: {{workspace.url}} in task parameters.
LAKEFLOW_BASE_URL = env_str("LAKEFLOW_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

LAKEFLOW_WAREHOUSES = _warehouses(env_str("LAKEFLOW_WAREHOUSES", ""))
# Lineage export: an OpenLineage endpoint (Marquez, DataHub, OpenMetadata) every attempt's events go to.
LAKEFLOW_OPENLINEAGE_EXPORT_URL = env_str("LAKEFLOW_OPENLINEAGE_EXPORT_URL", "").rstrip("/")
LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY = env_str("LAKEFLOW_OPENLINEAGE_EXPORT_API_KEY", "")

# Usage and cost (runs/usage.py): what an attempt's process tree consumed, priced per CPU-hour
# (user + system time) and per GB-hour of peak memory held for the attempt's execution time.
LAKEFLOW_PRICE_PER_CPU_HOUR = env_float("LAKEFLOW_PRICE_PER_CPU_HOUR", 0.05)
LAKEFLOW_PRICE_PER_GB_HOUR = env_float("LAKEFLOW_PRICE_PER_GB_HOUR", 0.005)
LAKEFLOW_COST_CURRENCY = env_str("LAKEFLOW_COST_CURRENCY", "USD")

# Backfills (backfills/): the longest range one backfill may cover, and the most runs it may make.
LAKEFLOW_BACKFILL_MAX_DAYS = env_int("LAKEFLOW_BACKFILL_MAX_DAYS", 366)
LAKEFLOW_BACKFILL_MAX_RUNS = env_int("LAKEFLOW_BACKFILL_MAX_RUNS", 1000)

# System tables (system_tables/): rows a query page or CSV answer holds at most, and how long one
# query may take.
LAKEFLOW_SYSTEM_TABLES_MAX_ROWS = env_int("LAKEFLOW_SYSTEM_TABLES_MAX_ROWS", 100000)
LAKEFLOW_SYSTEM_TABLES_TIMEOUT_SECONDS = env_float("LAKEFLOW_SYSTEM_TABLES_TIMEOUT_SECONDS", 60.0)

# Triggers' sql_condition gate: how long its query may take on its warehouse.
LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS = env_float("LAKEFLOW_SQL_CONDITION_TIMEOUT_SECONDS", 30.0)

# Notifications (notifications/): each try of a delivery waits at most TIMEOUT for the receiver;
# a failed try is retried after BACKOFF seconds, doubling (at most 10 minutes apart), until
# RETRY_SECONDS after the event, then marked failed. THREADS senders per cluster node.
LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS = env_float("LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS", 10.0)
LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS = env_float("LAKEFLOW_NOTIFICATION_BACKOFF_SECONDS", 10.0)
LAKEFLOW_NOTIFICATION_RETRY_SECONDS = env_float("LAKEFLOW_NOTIFICATION_RETRY_SECONDS", 3600.0)
LAKEFLOW_NOTIFICATION_THREADS = env_int("LAKEFLOW_NOTIFICATION_THREADS", 8)
# PagerDuty destinations send Events API v2 here (a proxy or a test receiver may stand in).
LAKEFLOW_PAGERDUTY_EVENTS_URL = env_str("LAKEFLOW_PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
# Email notifications: Django's SMTP backend with Django's own names. No EMAIL_HOST: emails are
# not sent, and each one says so on its run's page.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "lakeflow@localhost")
# Tasks get DATABRICKS_HOST and a token of their run's run-as identity (valid while the attempt
# runs, never admin). Tasks of other jobs under the same OS user can read a task's environment:
# false keeps identities out of tasks on a server whose job authors do not trust each other.
LAKEFLOW_TASK_RUN_AS_TOKEN = env_bool("LAKEFLOW_TASK_RUN_AS_TOKEN", True)
# Tasks get a credential that reads their run-as identity's secrets (dbutils.secrets). Readable by
# other jobs' tasks under the same OS user, as the token above: false there too (no dbutils.secrets).
LAKEFLOW_TASK_SECRETS = env_bool("LAKEFLOW_TASK_SECRETS", True)
# Fernet key(s) for secret values at rest (comma-separated: the first encrypts, all decrypt); unset:
# one generated in LAKEFLOW_HOME/secrets_key. Losing it makes every stored secret unreadable.
LAKEFLOW_SECRETS_KEY = env_str("LAKEFLOW_SECRETS_KEY")
# A file-arrival trigger watches at most this many files in its tree; past it, the trigger says
# so in its last_error and waits. Scans run on the clock's threads, off its step (false: in it).
LAKEFLOW_FILE_ARRIVAL_MAX_FILES = env_int("LAKEFLOW_FILE_ARRIVAL_MAX_FILES", 10_000)
LAKEFLOW_SCAN_IN_BACKGROUND = env_bool("LAKEFLOW_SCAN_IN_BACKGROUND", True)


def _secret_key():
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32 or key in WEAK_SECRET_KEYS:
            raise ImproperlyConfigured("SECRET_KEY is too easy to guess: use at least 32 random characters "
                                       "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
                                       "or leave it unset to keep a generated one in LAKEFLOW_HOME")
        return key
    # Embedded default: a random key kept beside the database, so sessions survive restarts.
    # Created once: processes starting together (web and nodes) must sign with the same key,
    # or the broker's messages one signs the other drops as forged.
    path = LAKEFLOW_HOME / "secret_key"
    if not path.exists():
        create_private_once(path, secrets.token_urlsafe(50))
    return path.read_text().strip()


WEAK_SECRET_KEYS = {"change-me", "changeme", "secret", "django-insecure"}


DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "crispy_forms",
    "crispy_bootstrap5",
    # Before django_q: runs' `qcluster` command wraps django-q2's to start the clock beside it.
    "jobs",
    "runs",
    "lineage",
    "audit",
    "vault",
    "warehouses",
    "notifications",
    "backfills",
    "system_tables",
    "django_q",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Wraps everything below it: one row per state-changing request, denied ones included.
    "audit.middleware.AuditMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# Sign-in throttling (django-axes): after LAKEFLOW_LOGIN_FAILURE_LIMIT failed sign-ins for one user
# name from one address, that pair waits LAKEFLOW_LOGIN_COOLOFF_MINUTES (the page says so; 429).
# API tokens are 256-bit and need none. Pairs, so a stranger cannot lock the admin out everywhere.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LAKEFLOW_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LAKEFLOW_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

ROOT_URLCONF = "lakeflow_site.urls"
ASGI_APPLICATION = "lakeflow_site.asgi.application"
WSGI_APPLICATION = "lakeflow_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "audit.context.workspace_admin",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Persistent connections in the cluster's processes only. Under ASGI each request's sync code
    # runs in a thread of its own, and a kept connection stays open after its thread ends (300
    # requests left 17 idle connections to the web process, and a busy suite ran Postgres out
    # of its 100): the web server opens one per request and closes it at the request's end.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60 if "qcluster" in sys.argv else 0,
                                                  conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            # Django's, with transactions queued on a file lock: see lakeflow_site/sqlite_backend.
            "ENGINE": "lakeflow_site.sqlite_backend",
            "NAME": LAKEFLOW_HOME / "db.sqlite3",
            # Kept open by cluster processes: django-q2 closes "old" connections around every
            # task, and reopening the file and rerunning the PRAGMAs cost each attempt about a
            # millisecond. Not by the web server, whose threads come and go with requests.
            "CONN_MAX_AGE": None if "qcluster" in sys.argv else 0,
            "OPTIONS": {
                # Web and every worker process write: WAL lets readers run beside the one
                # writer, IMMEDIATE takes the write lock at BEGIN so transactions queue
                # instead of failing with "database is locked" half-way through.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The embedded default's django-q2 queue lives in a SQLite file of its own: SQLite has one write
# lock per file, and broker traffic (enqueue, claim, acknowledge: three writes per task attempt)
# would otherwise queue behind and ahead of every run-state write. Not with LAKEFLOW_Q_SYNC (the
# unit tests' fast twin never touches the queue) nor with Postgres (Redis is the broker there).
SEPARATE_BROKER_DB = not DATABASE_URL and not env_bool("LAKEFLOW_Q_SYNC", False)
if SEPARATE_BROKER_DB:
    DATABASES["broker"] = {**DATABASES["default"], "NAME": LAKEFLOW_HOME / "broker.sqlite3"}
    DATABASE_ROUTERS = ["lakeflow_site.routers.BrokerRouter"]

REDIS_URL = env_str("REDIS_URL")
SCALE_OUT = bool(REDIS_URL) or "postgresql" in DATABASES["default"]["ENGINE"]


def refuse_scale_out_without(name, kept_name, what, lost, make):
    """Each machine would generate a key of its own: say which to set, and the one this machine
    already keeps, if any (a new key loses what the old one signed or encrypted)."""
    kept = LAKEFLOW_HOME / kept_name
    raise ImproperlyConfigured(
        f"{name} is required with DATABASE_URL (Postgres) or REDIS_URL: give every web process and qcluster "
        f"node the same {what}. "
        + (f"This machine already has one in {kept}: use its content ({lost})" if kept.exists()
           else f"Make one with: python -c '{make}'"))


# Without SECRET_KEY a node would drop the broker messages another signed as forged, and the web
# server refuse the credentials of attempts a node started; checked before one is generated.
if SCALE_OUT and not env_str("SECRET_KEY"):
    refuse_scale_out_without("SECRET_KEY", "secret_key", "one, at least 32 random characters",
                             "a new key signs everyone out", "import secrets; print(secrets.token_urlsafe(50))")
SECRET_KEY = _secret_key()
# Without LAKEFLOW_SECRETS_KEY secrets put through one web process could not be read through
# another, and task output would be withheld wherever the key differs.
if SCALE_OUT and not LAKEFLOW_SECRETS_KEY:
    refuse_scale_out_without("LAKEFLOW_SECRETS_KEY", "secrets_key", "Fernet key",
                             "a new key cannot read the secrets stored with it",
                             "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
Q_CLUSTER = {
    "name": env_str("LAKEFLOW_CLUSTER_NAME", "lakeflow"),
    "workers": env_int("LAKEFLOW_WORKERS", 4),
    # Our supervisor enforces task timeouts; this only bounds a wedged worker (6 days).
    "timeout": 60 * 60 * 24 * 6,
    # Our database decides what runs; a message that was never acknowledged is recovered
    # by our reaper, so the broker must not redeliver it by itself.
    "retry": 60 * 60 * 24 * 7,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "poll": env_float("LAKEFLOW_BROKER_POLL", 0.05),
    # Nothing here uses django-q schedules (our clock fires triggers): no scheduler query every 30 s.
    "scheduler": False,
    # The sentinel's guard only restarts dead workers and saves its status: no need to wake 2x a second.
    "guard_cycle": 5,
    "label": "Task queue",
    "sync": env_bool("LAKEFLOW_Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "broker" if SEPARATE_BROKER_DB else "default"
    # The same broker, polled fast while messages come and backing off to this when idle (runs/orm_broker.py).
    Q_CLUSTER["broker_class"] = "runs.orm_broker.AdaptiveORM"
LAKEFLOW_BROKER_IDLE_POLL = env_float("LAKEFLOW_BROKER_IDLE_POLL", 1.0)
# The clock sleeps until the next due time, but at most this long (runs/clock.py pause_seconds).
LAKEFLOW_CLOCK_IDLE_SECONDS = env_float("LAKEFLOW_CLOCK_IDLE_SECONDS", 1.0)
# Schedule slots that came this recently and did not fire (the clock's lease moving after a node
# died, a restart) fire late, in order; older ones are skipped but the latest (runs/triggers.py).
LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS = env_float("LAKEFLOW_SCHEDULE_CATCH_UP_SECONDS", 60.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# plotly.min.js comes from the installed plotly package: no CDN, no copy in the repository.
# (found, not imported: every process reads these settings, and plotly is ~5 MB of it.)
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data")]
STATIC_ROOT = LAKEFLOW_HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise expects it, even when serving from the finders
# Serve the admin's and our static files straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "jobs:list"
LOGOUT_REDIRECT_URL = "login"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Live run pages: with Redis, workers nudge the web processes through channels-redis; the
# embedded default needs no broker (the consumer reads new RunEvent rows itself).
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# How often a live run page's socket looks for new events when nothing nudged it.
LAKEFLOW_LIVE_POLL_SECONDS = env_float("LAKEFLOW_LIVE_POLL_SECONDS", 0.1)
# Live run pages one user may hold open at once, per web process (past it, pages poll instead).
LAKEFLOW_MAX_SOCKETS_PER_USER = env_int("LAKEFLOW_MAX_SOCKETS_PER_USER", 50)

# API bodies: job settings with 1,000 tasks fit easily; anything larger is refused with a clear error.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("LAKEFLOW_MAX_BODY_BYTES", 10 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
