"""The web server serves plain HTTP without pyOpenSSL (issue 20: ~8 MB of an idle web process):
`qcluster --web` leaves Twisted's TLS support out unless daphne is given an `ssl:` endpoint.
Checked in fresh interpreters, as the web process imports them: daphne and its server."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WEB_IMPORTS = """import sys
import django
django.setup()
from runs.management.commands.qcluster import leave_out_unused_tls
leave_out_unused_tls(sys.argv[2:], sys.argv[1])
import lakeflow_site.web
import daphne.cli, daphne.server
from twisted.internet import endpoints
print(type(sys.modules.get("OpenSSL")).__name__)
"""


def web_imports(*daphne_args, redis_url=""):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "lakeflow_site.test_settings"}
    done = subprocess.run([sys.executable, "-c", WEB_IMPORTS, redis_url, *daphne_args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def test_a_plain_http_web_server_imports_no_openssl():
    assert web_imports("--bind", "127.0.0.1", "--port", "8000") == "NoneType"


def test_an_ssl_endpoint_keeps_tls():
    assert web_imports("-e", "ssl:8443:privateKey=key.pem") == "module"


def test_a_redis_url_asking_for_ocsp_stapling_keeps_tls():  # redis-py checks the staple with pyOpenSSL
    assert web_imports("--port", "8000", redis_url="rediss://r:6380/0?ssl_validate_ocsp_stapled=true") == "module"
