"""The edges of the web server: websockets only from the site's own pages (whatever ALLOWED_HOSTS
says) and a bounded number per user, sign-in throttling, and deploy examples without a known key."""

from pathlib import Path

import pytest
import yaml
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from lakeflow_site.origins import origin_allowed
from runs.admission import create_run
from runs.routing import websocket_urlpatterns
from tests.dashboard.conftest import make_job

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("origin, host, allowed", [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
    ("https://jobs.example.com", "jobs.example.com", True),
    ("http://evil.example", "127.0.0.1:8000", False),
    ("http://127.0.0.1:9999", "127.0.0.1:8000", False),
    ("", "127.0.0.1:8000", False),
    ("null", "127.0.0.1:8000", False),
])
def test_a_websocket_origin_must_be_the_site_itself_even_when_any_host_is_allowed(settings, origin, host, allowed):
    settings.ALLOWED_HOSTS = ["*"]
    assert origin_allowed(origin, host) is allowed


def test_a_trusted_origin_may_connect_and_the_host_must_be_allowed(settings):
    settings.ALLOWED_HOSTS = ["jobs.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://proxy.example.com"]
    assert origin_allowed("https://proxy.example.com", "jobs.example.com")
    assert not origin_allowed("http://other.example", "other.example")


def session_headers(client, user, origin, host="127.0.0.1:8000"):
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"origin", origin.encode()), (b"host", host.encode()), (b"cookie", cookie.encode())]


@pytest.mark.django_db(transaction=True)
def test_the_real_application_refuses_another_sites_page_and_accepts_its_own(client, settings, held_broker):
    from lakeflow_site.asgi import application

    settings.ALLOWED_HOSTS = ["*"]
    user = get_user_model().objects.create_user("ada", password="pw")
    run, _ = create_run(make_job(user))
    evil = session_headers(client, user, "http://evil.example")
    own = session_headers(client, user, "http://127.0.0.1:8000")

    async def scenario():
        refused = WebsocketCommunicator(application, f"/ws/runs/{run.id}/", headers=evil)
        assert (await refused.connect())[0] is False
        accepted = WebsocketCommunicator(application, f"/ws/runs/{run.id}/", headers=own)
        assert (await accepted.connect())[0] is True
        await accepted.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_one_user_holds_a_bounded_number_of_live_sockets(settings, held_broker):
    settings.LAKEFLOW_MAX_SOCKETS_PER_USER = 2
    user = get_user_model().objects.create_user("ada", password="pw")
    run, _ = create_run(make_job(user))

    def socket():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{run.id}/")
        communicator.scope["user"] = user
        return communicator

    async def scenario():
        first, second, third = socket(), socket(), socket()
        assert (await first.connect())[0] and (await second.connect())[0]
        assert await third.connect() == (False, 4429)
        await first.disconnect()
        fourth = socket()
        assert (await fourth.connect())[0]  # a closed one frees its place
        await second.disconnect()
        await fourth.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_sign_in_is_throttled_per_user_name_and_address(client):
    get_user_model().objects.create_user("ada", password="right-password")
    get_user_model().objects.create_user("bob", password="bobs-password")
    for _ in range(4):
        assert client.post("/login/", {"username": "ada", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "ada", "password": "wrong"}).status_code == 429  # the 5th
    locked = client.post("/login/", {"username": "ada", "password": "right-password"})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert client.post("/login/", {"username": "bob", "password": "bobs-password"}).status_code == 302


def test_the_compose_example_has_no_known_secret_key_and_no_wildcard_host():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    environment = compose["x-lakeflow"]["environment"]
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert "*" not in environment["ALLOWED_HOSTS"]
    assert compose["services"]["worker"]["user"] == "root"  # so that it can start tasks as lakeflow-task
