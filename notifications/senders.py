"""Sending one notification over its channel: email through Django's email backend, webhooks
with the payload each receiver expects (notifications/messages.py). Each returns the receiver's
answer, or raises DeliveryFailed with it."""

import json

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from notifications import messages

USER_AGENT = "lakeflow-notifications/1"


class DeliveryFailed(Exception):
    """A try that did not deliver. ``answer``: what the receiver said, if it said anything;
    ``permanent``: trying again cannot help (no SMTP server configured, a destination deleted)."""

    def __init__(self, message, answer="", permanent=False):
        super().__init__(message)
        self.answer, self.permanent = answer, permanent


def send(notification):
    channel = notification.channel
    if notification.recipient.startswith("destination:") and notification.destination is None:
        raise DeliveryFailed(f"the notification destination {notification.recipient.partition(':')[2]} "
                             "no longer exists", permanent=True)
    sender = SENDERS.get(channel)
    if sender is None:
        raise DeliveryFailed(f"this server cannot send {channel} notifications", permanent=True)
    return sender(notification)


def send_email(notification):
    if not settings.EMAIL_HOST and settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        raise DeliveryFailed("no SMTP server is configured (set EMAIL_HOST)", permanent=True)
    if notification.destination is not None:
        addresses = notification.destination.config.get("addresses") or []
    else:
        addresses = [notification.recipient.partition(":")[2]]
    subject, body = messages.email(notification.facts)
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, addresses,
                           headers={"Lakeflow-Delivery-Id": delivery_id(notification)},
                           connection=get_connection(timeout=settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS))
    try:
        sent = message.send()
    except Exception as exc:
        raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}") from exc
    return f"accepted by {settings.EMAIL_HOST}:{settings.EMAIL_PORT} for {', '.join(addresses)}" if sent else ""


def delivery_id(notification):
    """Stable across tries: a receiver that sees it twice knows it is a repeat."""
    return f"lakeflow-notification-{notification.id}"


def post_json(notification, url, payload, auth=None):
    try:
        response = requests.post(url, data=json.dumps(payload), auth=auth,
                                 timeout=settings.LAKEFLOW_NOTIFICATION_TIMEOUT_SECONDS,
                                 headers={"Content-Type": "application/json", "User-Agent": USER_AGENT,
                                          "Lakeflow-Delivery-Id": delivery_id(notification)},
                                 allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    answer = f"HTTP {response.status_code} {response.text[:1000]}".strip()
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"the receiver answered HTTP {response.status_code}", answer=answer)
    return answer


def send_generic_webhook(notification):
    secrets = notification.destination.secrets
    auth = (secrets["username"], secrets.get("password", "")) if secrets.get("username") else None
    return post_json(notification, secrets["url"], messages.generic_webhook(notification.facts), auth)


SENDERS = {"EMAIL": send_email, "WEBHOOK": send_generic_webhook}
