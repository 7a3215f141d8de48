"""Sending one message over its channel: email through Django's email backend; Slack, Microsoft
Teams, PagerDuty and generic webhooks as JSON over HTTP, with the payload each receiver expects
(notifications/messages.py). Each returns the receiver's answer, or raises DeliveryFailed.

Permanent failures are the ones another try cannot fix: nothing to send to (no SMTP server, a
deleted destination, a missing URL or key) or an HTTP 4xx other than 408 and 429, a redirect
(never followed) or a URL requests refuses. Everything else (5xx, 408, 429, timeouts, refused
connections, SMTP errors) is tried again with backoff (notifications/delivery.py)."""

import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from notifications import messages
from notifications.models import Destination
from vault.redaction import redact_text

USER_AGENT = "lakeflow-notifications/1"
ANSWER_CHARS = 1000
ANSWER_BYTES = 4 * ANSWER_CHARS  # read no more of a receiver's body than the answer keeps
RETRIED_4XX = (408, 429)  # a timeout and a rate limit: the next try may pass


class DeliveryFailed(Exception):
    """A try that did not deliver. ``answer``: what the receiver said, if it said anything;
    ``permanent``: trying again cannot help (no SMTP server configured, a destination deleted,
    an HTTP 4xx answer)."""

    def __init__(self, message, answer="", permanent=False):
        super().__init__(message)
        self.answer, self.permanent = answer, permanent


@dataclass(frozen=True)
class Outgoing:
    """One message to put on the wire: one try of a notification, or a destination's test."""

    channel: str
    destination: Destination | None
    addresses: tuple  # email only
    facts: dict
    delivery_id: str  # the Lakeflow-Delivery-Id header: the same on every try of one notification


def send(notification):
    if notification.recipient.startswith("destination:") and notification.destination is None:
        raise DeliveryFailed(f"the notification destination {notification.recipient.partition(':')[2]} "
                             "no longer exists", permanent=True)
    if notification.destination is not None:
        addresses = notification.destination.config.get("addresses") or ()
    else:
        addresses = (notification.recipient.partition(":")[2],)
    return _send(Outgoing(notification.channel, notification.destination, tuple(addresses),
                          notification.facts, delivery_id(notification)))


def send_test(destination):
    """A test message through the destination's channel (the destinations page's Send test)."""
    facts = messages.test_facts(int(time.time() * 1000), settings.LAKEFLOW_BASE_URL)
    return _send(Outgoing(destination.destination_type, destination,
                          tuple(destination.config.get("addresses") or ()), facts, f"lakeflow-test-{uuid.uuid4()}"))


def delivery_id(notification):
    """Stable across tries: a receiver that sees it twice knows it is a repeat."""
    return f"lakeflow-notification-{notification.id}"


def _send(out):
    sender = SENDERS.get(out.channel)
    if sender is None:
        raise DeliveryFailed(f"this server cannot send {out.channel} notifications", permanent=True)
    return sender(out)


def send_email(out):
    if not settings.EMAIL_HOST and settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        raise DeliveryFailed("no SMTP server is configured (set EMAIL_HOST)", permanent=True)
    if not out.addresses:
        raise DeliveryFailed("the email destination has no addresses", permanent=True)
    subject, body = messages.email(out.facts)
    message = EmailMultiAlternatives(
        subject, body, settings.DEFAULT_FROM_EMAIL, list(out.addresses),
        headers={"Lakeflow-Delivery-Id": out.delivery_id},
        connection=get_connection(timeout=settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS))
    message.attach_alternative(messages.email_html(out.facts), "text/html")
    try:
        sent = message.send()
    except Exception as exc:  # SMTP errors, refused connections, timeouts: the next try may pass
        raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}") from exc
    if not sent:
        raise DeliveryFailed("the email backend sent nothing")
    return f"accepted by {settings.EMAIL_HOST}:{settings.EMAIL_PORT} for {', '.join(out.addresses)}"


def secret(out, name):
    value = out.destination.secrets.get(name) if out.destination is not None else None
    if not value:
        raise DeliveryFailed(f"the {out.channel} destination has no {name}", permanent=True)
    return value


def _hiding_url(exc, url):
    """requests' error text without the URL's secret parts: a Slack or Teams webhook's path and
    query are its credentials, and errors are shown on run pages to everyone who views the job."""
    parts = urlsplit(url or "")
    secrets = [url, parts.path if len(parts.path) > 1 else "", parts.query, parts.password or "",
               parts.netloc if "@" in parts.netloc else ""]
    return redact_text(str(exc), [secret.encode() for secret in secrets if secret])


def post_json(out, url, payload, auth=None):
    """POST the payload; the answer "HTTP <status> <start of the body>" on a 2xx."""
    try:
        with requests.post(url, json=payload, auth=auth, timeout=settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS,
                           headers={"User-Agent": USER_AGENT, "Lakeflow-Delivery-Id": out.delivery_id},
                           allow_redirects=False, stream=True) as response:
            status, body = response.status_code, _start_of(response)
            location = response.headers.get("Location", "")
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        raise DeliveryFailed(f"the {out.channel} destination's URL is not usable: {_hiding_url(exc, url)}",
                             permanent=True) from exc
    except requests.Timeout as exc:
        raise DeliveryFailed(f"the receiver did not answer within {settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS:g} s "
                             f"({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {_hiding_url(exc, url)}") from exc
    answer = f"HTTP {status} {body}".strip()
    if 200 <= status < 300:
        return answer
    if 300 <= status < 400:
        raise DeliveryFailed(f"the receiver answered HTTP {status}, a redirect to {location or 'nowhere'}: redirects "
                             "are not followed, set the destination's URL to the final address", answer, permanent=True)
    if 400 <= status < 500 and status not in RETRIED_4XX:
        raise DeliveryFailed(f"the receiver refused the message with HTTP {status}: check the destination's URL "
                             "and credentials (not tried again)", answer, permanent=True)
    raise DeliveryFailed(f"the receiver answered HTTP {status}", answer)


def _start_of(response):
    body = b""
    for chunk in response.iter_content(1024):
        body += chunk
        if len(body) >= ANSWER_BYTES:
            break
    return body.decode(response.encoding or "utf-8", errors="replace")[:ANSWER_CHARS]


def send_slack(out):
    return post_json(out, secret(out, "url"), messages.slack(out.facts))


def send_teams(out):
    return post_json(out, secret(out, "url"), messages.teams(out.facts))


def send_pagerduty(out):
    source = urlsplit(settings.LAKEFLOW_BASE_URL).hostname or "lakeflow"
    event = messages.pagerduty(out.facts, secret(out, "integration_key"), source)
    return post_json(out, settings.LAKEFLOW_PAGERDUTY_EVENTS_URL, event)


def send_generic_webhook(out):
    secrets = out.destination.secrets if out.destination is not None else {}
    auth = (secrets["username"], secrets.get("password") or "") if secrets.get("username") else None
    return post_json(out, secret(out, "url"), messages.generic_webhook(out.facts), auth)


SENDERS = {"EMAIL": send_email, "SLACK": send_slack, "MICROSOFT_TEAMS": send_teams, "PAGERDUTY": send_pagerduty,
           "WEBHOOK": send_generic_webhook}
