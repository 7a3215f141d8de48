"""The security fixes, shown on a real server (serve on SQLite, and web + qcluster on Postgres +
Redis) over HTTP: the dashboard's editors refuse a user the API refuses, integers past
Databricks' ranges and YAML aliases are refused, an oversized request line gets a 414."""

import socket

import pytest
import requests
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs

pytestmark = pytest.mark.e2e


def signed_in(server, username, password):
    session = requests.Session()
    page = session.get(f"{server.url}/login/", timeout=30)
    token = page.cookies["csrftoken"]
    done = session.post(f"{server.url}/login/", data={"username": username, "password": password,
                                                       "csrfmiddlewaretoken": token}, timeout=30)
    assert done.status_code == 200 and "Sign in" not in done.text.split("<title>")[1], "sign-in failed"
    return session


def post_form(session, url, data):
    data = {**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    return session.post(url, data=data, headers={"Referer": url}, timeout=60, allow_redirects=False)


def test_a_user_who_may_not_change_a_job_cannot_change_it_from_the_dashboard(server):
    w = server.client()
    job = w.jobs.create(name="owned by e2e", tasks=[jobs.Task(
        task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="ok.py"))])
    server.manage("shell", "-c", "from django.contrib.auth import get_user_model as m; "
                  "u, _ = m().objects.get_or_create(username='mallory'); u.set_password('mallory-pw'); u.save()")
    mallory = signed_in(server, "mallory", "mallory-pw")
    source = "name: hijacked\ntasks:\n- task_key: t\n  shell_command_task: {command: id}\n"
    refused = post_form(mallory, f"{server.url}/jobs/{job.job_id}/source/", {"format": "yaml", "source": source})
    assert refused.status_code == 403
    refused = post_form(mallory, f"{server.url}/jobs/{job.job_id}/edit/", {"name": "hijacked"})
    assert refused.status_code == 403
    assert w.jobs.get(job.job_id).settings.name == "owned by e2e"


def test_integers_past_databricks_ranges_are_refused_through_the_sdk(server):
    with pytest.raises(InvalidParameterValue, match="tasks\\[0\\].max_retries: must be between -1 and 2,147,483,647"):
        server.client().jobs.create(name="huge", tasks=[jobs.Task(
            task_key="t", max_retries=1180591620717411303424, min_retry_interval_millis=4611686018427387904,
            spark_python_task=jobs.SparkPythonTask(python_file="ok.py"))])


def test_the_editor_refuses_a_yaml_alias_bomb(server):
    admin = signed_in(server, "admin", server.env["LAKEFLOW_ADMIN_PASSWORD"])
    bomb = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(7)] + ["name: bomb"])
    answer = post_form(admin, f"{server.url}/jobs/new/source/", {"format": "yaml", "source": bomb})
    assert answer.status_code == 200
    assert "aliases (*name) are not accepted" in answer.text


def test_a_request_line_past_16_kib_is_answered_414_not_dropped(server):
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=30) as connection:
        connection.sendall(f"GET /?q={'x' * 20_000} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        answer = connection.recv(1024)
    assert answer.startswith(b"HTTP/1.1 414")
    assert requests.get(f"{server.url}/.well-known/databricks-config", timeout=30).status_code == 200
