"""What a real server decided to notify, read from its own database (the SQLite file under its
LAKEFLOW_HOME, or its Postgres database), and destinations made with the official SDK.

A run's notification rows exist once the reactions to its events ran; waiting until those are
done and every row is SENT or FAILED is what lets a test say what was (and was not) sent."""

import sqlite3
from pathlib import Path

import psycopg
from databricks.sdk.service import settings

from tests.e2e.conftest import wait_until

COLUMNS = ("id", "task_key", "event", "recipient", "channel", "state", "tries", "claimed_by", "answer", "error")
FINAL = ("SENT", "FAILED")


def query(server, sql, *args):
    """Rows of a read-only query; ``%s`` placeholders on either database."""
    database_url = getattr(server, "database_url", None)
    if database_url:
        with psycopg.connect(database_url) as conn:
            return conn.execute(sql, args).fetchall()
    path = Path(server.env["LAKEFLOW_HOME"]) / "db.sqlite3"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql.replace("%s", "?"), args).fetchall()
    finally:
        conn.close()


def notification_rows(server, run_id):
    found = query(server, f"SELECT {', '.join(COLUMNS)} FROM notifications_notification WHERE run_id = %s "
                          "ORDER BY id", run_id)
    return [dict(zip(COLUMNS, row)) for row in found]


def reactions_done(server, run_id):
    return query(server, "SELECT count(*) FROM runs_runevent WHERE run_id = %s AND reactions_pending",
                 run_id)[0][0] == 0


def settled_notifications(server, run_id, timeout=120):
    """The run's notification rows, once the reactions to its events ran and every row is final.
    Call it after the run ended: a running run may still add rows."""
    def settled():
        if not reactions_done(server, run_id):
            return None
        rows = notification_rows(server, run_id)
        return rows if rows and all(row["state"] in FINAL for row in rows) else None
    return wait_until(settled, timeout=timeout, interval=0.2, what=f"run {run_id}'s notifications to be sent")


def delivery_id(row):
    """The Lakeflow-Delivery-Id header every try of this row carries."""
    return f"lakeflow-notification-{row['id']}"


def requests_for(receiver, row):
    """The requests an HttpReceiver got for this row's tries."""
    return [r for r in list(receiver.requests) if r.headers.get("lakeflow-delivery-id") == delivery_id(row)]


def answers_to(receiver, row):
    """The statuses the receiver answered this row's tries with (None: held, never answered)."""
    return [r.answered for r in requests_for(receiver, row)]


def emails_of(smtp, row):
    return [m for m in list(smtp.messages) if m["Lakeflow-Delivery-Id"] == delivery_id(row)]


def create_destination(w, display_name, **config):
    """A notification destination through the SDK; ``config``: one of the SDK's Config fields,
    e.g. generic_webhook=settings.GenericWebhookConfig(url=...). Its id."""
    return w.notification_destinations.create(display_name=display_name, config=settings.Config(**config)).id


def webhook_destination(w, display_name, url):
    return create_destination(w, display_name, generic_webhook=settings.GenericWebhookConfig(url=url))
