"""Sending one message over its channel: email through Django's email backend; Slack, Microsoft
Teams, PagerDuty and generic webhooks as JSON over HTTP, with the payload each receiver expects
(notifications/messages.py). Each returns the receiver's answer, or raises DeliveryFailed.

Permanent failures are the ones another try cannot fix: nothing to send to (no SMTP server, a
deleted destination, a missing URL or key), an HTTP 4xx other than 408 and 429, a redirect
(never followed), a URL requests refuses or an SMTP 5xx reply. Everything else (HTTP 5xx, 408,
429, SMTP 4xx, timeouts, refused connections) is tried again with backoff
(notifications/delivery.py).

Errors and answers are shown on run pages to everyone who views the job, and logged: they never
hold a webhook URL's secret parts (a Slack or Teams URL's path and query are its credentials) nor
an email destination's addresses (the API shows those to admins only)."""

import html
import re
import smtplib
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from notifications import messages
from notifications.models import Destination
from vault.redaction import REDACTED

USER_AGENT = "lakeflow-notifications/1"
ANSWER_CHARS = 1000
ANSWER_BYTES = 4 * ANSWER_CHARS  # read no more of a receiver's body than the answer keeps
RETRIED_4XX = (408, 429)  # a timeout and a rate limit: the next try may pass
REQUOTED = "!#$&'()*+,/:;=?@[]~"  # what requests leaves unquoted in a URL it sends (requests.utils.requote_uri)


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
    destination = notification.destination
    if notification.recipient.startswith("destination:") and destination is None:
        raise DeliveryFailed(f"the notification destination {notification.recipient.partition(':')[2]} "
                             "no longer exists", permanent=True)
    if destination is not None:
        # Its type now, not when the notification was queued: an admin may have changed it since.
        channel, addresses = destination.destination_type, destination.config.get("addresses") or ()
    else:
        channel, addresses = notification.channel, (notification.recipient.partition(":")[2],)
    return _send(Outgoing(channel, destination, tuple(addresses), notification.facts, delivery_id(notification)))


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
    except Exception as exc:
        raise smtp_failure(exc, out) from exc
    if not sent:
        raise DeliveryFailed("the email backend sent nothing")
    if out.destination is not None:  # its addresses are for admins
        return f"accepted by the SMTP server for {len(out.addresses)} address{'es' if len(out.addresses) != 1 else ''}"
    return f"accepted by {settings.EMAIL_HOST}:{settings.EMAIL_PORT} for {', '.join(out.addresses)}"


def smtp_failure(exc, out):
    """DeliveryFailed for an error while sending an email: permanent on an SMTP 5xx reply (the
    same command fails again: an unknown recipient, a refused sender, failed authentication),
    tried again on a 4xx and on anything without a reply (refused connections, timeouts). An
    email destination's addresses are left out of it (a job's own addresses may stay: its
    viewers see them in its settings)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):  # every recipient refused, each with its reply
        replies = exc.recipients.values()
        said = (f"refused {len(replies)} address{'es' if len(replies) != 1 else ''}: "
                + "; ".join(sorted({f"{code} {_reply_text(text)}" for code, text in replies})))
        permanent = bool(replies) and all(500 <= code < 600 for code, _ in replies)
    elif isinstance(exc, smtplib.SMTPResponseException):  # sender refused, authentication, data, greeting
        said, permanent = f"{exc.smtp_code} {_reply_text(exc.smtp_error)}", 500 <= exc.smtp_code < 600
    else:
        said, permanent = str(exc), False
    message = f"SMTP: {type(exc).__name__}: {said}" + (" (not tried again)" if permanent else "")
    if out.destination is not None:
        message = hide(message, out.addresses)
    return DeliveryFailed(message, permanent=permanent)


def _reply_text(text):
    return " ".join((text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)).split())


def secret(out, name):
    value = out.destination.secrets.get(name) if out.destination is not None else None
    if not value:
        raise DeliveryFailed(f"the {out.channel} destination has no {name}", permanent=True)
    return value


def hide(text, secrets):
    """`text` with every secret replaced by "[REDACTED]", whatever its case (percent-encodings
    and email addresses are case-insensitive)."""
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not secrets:
        return text
    return re.sub("|".join(map(re.escape, secrets)), REDACTED.decode(), text, flags=re.IGNORECASE)


def url_secrets(url):
    """The secret parts of a URL (the whole URL, its path, query and user information) in every
    form they may come back in an error or a receiver's answer: as given, decoded, percent-encoded
    as requests sends them or fully, HTML-escaped (a server's "moved" page) and with JSON's
    escaped slashes."""
    if not url:
        return set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    userinfo = parts.netloc.rpartition("@")[0]
    forms = set()
    for piece in (url, parts.path if len(parts.path) > 1 else "", parts.query, userinfo, userinfo.partition(":")[2]):
        if not piece:
            continue
        plain = unquote(piece)
        for form in (piece, plain, quote(plain, safe=REQUOTED), quote(plain, safe="/"), quote(plain, safe="")):
            forms |= {form, html.escape(form), form.replace("/", "\\/")}
    return forms


def where(location):
    """Where a redirect points, as far as may be shown: the scheme and host of its Location (its
    path and query may be a new secret URL)."""
    if not location:
        return "nowhere"
    try:
        parts = urlsplit(location)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "an address that cannot be read"
    if not host:
        return "another address on the same server"
    return f"{parts.scheme + ':' if parts.scheme else ''}//{host}/…"


def post_json(out, url, payload, auth=None):
    """POST the payload; the answer "HTTP <status> <start of the body>" on a 2xx. The error and
    the answer never hold the URL's secret parts, nor a redirect's path and query."""
    import requests  # here: every cluster process loads this module, few of them send (~16 MB)

    secrets = url_secrets(url)

    def failed(message, answer="", permanent=False):
        return DeliveryFailed(hide(message, secrets), answer, permanent)

    try:
        with requests.post(url, json=payload, auth=auth, timeout=settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS,
                           headers={"User-Agent": USER_AGENT, "Lakeflow-Delivery-Id": out.delivery_id},
                           allow_redirects=False, stream=True) as response:
            status, body = response.status_code, _start_of(response)
            location = response.headers.get("Location", "")
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        raise failed(f"the {out.channel} destination's URL is not usable: {exc}", permanent=True) from exc
    except requests.Timeout as exc:
        raise failed(f"the receiver did not answer within {settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS:g} s "
                     f"({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise failed(f"{type(exc).__name__}: {exc}") from exc
    # The body may echo the Location (Apache's "moved" page does); the error shows its host only.
    answer = hide(f"HTTP {status} {body}".strip(), secrets | url_secrets(location))
    if 200 <= status < 300:
        return answer
    if 300 <= status < 400:
        raise failed(f"the receiver answered HTTP {status}, a redirect to {where(location)}: redirects are not "
                     "followed, set the destination's URL to the final address", answer, permanent=True)
    if 400 <= status < 500 and status not in RETRIED_4XX:
        raise failed(f"the receiver refused the message with HTTP {status}: check the destination's URL "
                     "and credentials (not tried again)", answer, permanent=True)
    raise failed(f"the receiver answered HTTP {status}", answer)


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
