"""An idle server's processes do not carry sqlglot (about 15 MB each, issue 20): the cluster node
imports the apps, the clock and the worker before it forks them (runs/management/commands/
qcluster.py), and the web server loads the URL conf and its views; sqlglot is imported only by the
code that parses SQL, when it first runs. Checked in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IDLE_IMPORTS = """import sys
import django
django.setup()
import runs.management.commands.qcluster
import runs.management.commands.lakeflow_clock
import runs.worker
import lakeflow_site.asgi
from django.urls import get_resolver
get_resolver().url_patterns
print(','.join(sorted(m for m in sys.modules if m == 'sqlglot' or m.startswith('sqlglot.'))[:3]))
"""


def test_the_apps_clock_worker_and_views_import_without_sqlglot():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "lakeflow_site.test_settings"}
    done = subprocess.run([sys.executable, "-c", IDLE_IMPORTS], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"an idle process imports {done.stdout.strip()}"
