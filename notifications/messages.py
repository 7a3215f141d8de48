"""What each channel's message says, from a notification's facts (notifications/reactions.py).
Pure: no Django, no I/O; notifications/senders.py puts these on the wire.

Slack and Teams texts are for people and may change; the generic webhook's JSON is Databricks'
(../shared/reference/lakeflow-jobs.md §1.3) and PagerDuty's is its Events API v2."""

import html
import re
from datetime import UTC, datetime

WORDS = {"on_start": "started", "on_success": "succeeded", "on_failure": "failed",
         "on_duration_warning_threshold_exceeded": "is running longer than expected",
         "on_streaming_backlog_exceeded": "has a streaming backlog above its limit"}
TEST = "test"  # the event of a destination's test message (senders.send_test): no run
TEST_HEADLINE = "Test notification from Lakeflow Jobs"
PAGERDUTY_SEVERITY = {"on_failure": "critical", "on_duration_warning_threshold_exceeded": "warning",
                      "on_streaming_backlog_exceeded": "warning"}  # on_start, on_success, tests: info
SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
SLACK_TEXT_CHARS = 3000  # Slack's limit for a section's text
PAGERDUTY_SUMMARY_CHARS = 1024
# What Teams' markdown (a CommonMark subset: emphasis, links, lists) would read as markup in a
# job's name or an error: backslash-escaped, so that "[Re-login](https://evil)" stays text.
TEAMS_MARKUP = re.compile(r"[\\`*_~\[\]()<>]|(?<![^\r\n])([ \t]*)([-+]|[0-9]+(?=\.))(?=\.?[ \t])")
TEAMS_COLOURS = {"on_failure": "Attention", "on_success": "Good", "on_duration_warning_threshold_exceeded": "Warning",
                 "on_streaming_backlog_exceeded": "Warning"}


def test_facts(at_ms, base_url):
    """The facts of a destination's test message: no job, no run."""
    return {"event": TEST, "event_type": f"jobs.{TEST}", "at_ms": at_ms, "run_page_url": f"{base_url}/",
            "message": "This destination works: Lakeflow Jobs can send it notifications."}


def headline(facts):
    if facts["event"] == TEST:
        return TEST_HEADLINE
    subject = f"task {facts['task_key']} of job {facts['job_name']}" if facts.get("task_key") else f"job {facts['job_name']}"
    word = WORDS.get(facts["event"], facts["event"])
    if facts["event"] == "on_failure" and facts.get("result_state") not in (None, "FAILED"):
        word = f"ended {facts['result_state']}"
    return f"Run {facts['run_id']} of {subject} {word}"


def details(facts):
    """(title, value) pairs a reader may want beside the headline."""
    if facts["event"] == TEST:
        return [("Time", timestamp(facts["at_ms"]))]
    rows = [("Job", f"{facts['job_name']} ({facts['job_id']})"), ("Run", str(facts["run_id"]))]
    if facts.get("task_key"):
        rows.append(("Task", facts["task_key"]))
    if facts.get("attempt_number"):
        rows.append(("Attempt", f"retry {facts['attempt_number']}"))
    if facts.get("repair_id"):
        rows.append(("Repair", str(facts["repair_id"])))
    if facts.get("result_state"):
        rows.append(("Result", facts["result_state"]))
    if facts.get("metric"):
        rows.append(("Health rule", f"{facts['metric']} > {facts.get('threshold')} (observed {facts.get('observed')})"))
    if facts.get("trigger"):
        rows.append(("Trigger", facts["trigger"]))
    rows.append(("Time", timestamp(facts["at_ms"])))
    return rows


def timestamp(at_ms):
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def link_label(facts):
    return "Open Lakeflow Jobs" if facts["event"] == TEST else "View run"


def email(facts):
    """(subject, plain-text body)."""
    lines = [headline(facts), ""]
    if facts.get("message"):
        lines += [facts["message"], ""]
    lines += [f"{title}: {value}" for title, value in details(facts)]
    lines += ["", f"{'Lakeflow Jobs' if facts['event'] == TEST else 'Run page'}: {facts['run_page_url']}"]
    # A header cannot hold a line break; a job name could.
    subject = " ".join(f"[Lakeflow] {headline(facts)}".split())
    return subject, "\n".join(lines) + "\n"


def email_html(facts):
    """The email's HTML alternative, every fact escaped."""
    e = html.escape
    parts = [f"<p><strong>{e(headline(facts))}</strong></p>"]
    if facts.get("message"):
        parts.append(f"<pre style=\"white-space: pre-wrap\">{e(facts['message'])}</pre>")
    parts.append("<table>" + "".join(f"<tr><th align=\"left\">{e(t)}</th><td>{e(v)}</td></tr>"
                                     for t, v in details(facts)) + "</table>")
    parts.append(f"<p><a href=\"{e(facts['run_page_url'])}\">{e(link_label(facts))}</a></p>")
    return "<html><body>" + "".join(parts) + "</body></html>\n"


def generic_webhook(facts):
    """Databricks' generic webhook JSON (event_type, workspace_id, run, job; task for task events)."""
    if facts["event"] == TEST:
        return {"event_type": facts["event_type"], "workspace_id": "0", "message": TEST_HEADLINE}
    payload = {"event_type": facts["event_type"], "workspace_id": "0",
               "run": {"run_id": str(facts["run_id"])},
               "job": {"job_id": str(facts["job_id"]), "name": facts["job_name"]}}
    if facts.get("task_key"):
        payload["task"] = {"task_key": facts["task_key"]}
        if facts.get("task_run_id"):
            payload["run"] = {"run_id": str(facts["task_run_id"]), "parent_run_id": str(facts["run_id"])}
    return payload


def slack_escape(text, limit=SLACK_TEXT_CHARS):
    """Slack's three control characters escaped, cut to ``limit`` characters without halving an
    entity (an escaped text may be up to five times longer)."""
    out, size = [], 0
    for char in str(text):
        piece = SLACK_ESCAPES.get(char, char)
        if size + len(piece) > limit - 1:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def slack(facts):
    """An incoming webhook's message: the headline as fallback text, and blocks."""
    title = slack_escape(headline(facts), SLACK_TEXT_CHARS - 2)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"}}]
    if facts.get("message"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(facts["message"])}})
    context = " · ".join(f"{t}: {v}" for t, v in details(facts))
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"<{slack_escape(facts['run_page_url'])}|{link_label(facts)}>"},
        {"type": "mrkdwn", "text": slack_escape(context, 2000)}]})
    return {"text": title, "blocks": blocks}


def teams_escape(text):
    """Plain text for a TextBlock or a fact, which Teams renders as markdown."""
    return TEAMS_MARKUP.sub(_escaped, str(text))


def _escaped(match):
    indent, marker = match.group(1, 2)
    if marker is None:  # a markup character
        return "\\" + match.group(0)
    # A list item's marker ("- ", "+ ", "1. "; "*" and ")" are escaped wherever they are).
    return f"{indent}{marker}\\" if marker.isdigit() else f"{indent}\\{marker}"


def teams(facts):
    """An Adaptive Card in a message, as Teams Workflows and incoming webhooks take it."""
    body = [{"type": "TextBlock", "text": teams_escape(headline(facts)), "weight": "Bolder", "size": "Medium",
             "wrap": True, "color": TEAMS_COLOURS.get(facts["event"], "Default")}]
    if facts.get("message"):
        body.append({"type": "TextBlock", "text": teams_escape(facts["message"]), "wrap": True})
    body.append({"type": "FactSet", "facts": [{"title": t, "value": teams_escape(v)} for t, v in details(facts)]})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body,
            "actions": [{"type": "Action.OpenUrl", "title": link_label(facts), "url": facts["run_page_url"]}]}
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def pagerduty_dedup_key(facts):
    """One incident per job (per task for task-level alerts): a success resolves the failure's."""
    if facts["event"] == TEST:
        return "lakeflow-test"
    key = f"lakeflow-job-{facts['job_id']}"
    return f"{key}-task-{facts['task_key']}" if facts.get("task_key") else key


def pagerduty(facts, routing_key, source):
    """An Events API v2 event: success resolves, everything else triggers (start and tests as info)."""
    summary = headline(facts) + (f": {facts['message']}" if facts.get("message") else "")
    if len(summary) > PAGERDUTY_SUMMARY_CHARS:
        summary = summary[:PAGERDUTY_SUMMARY_CHARS - 1] + "…"
    return {
        "routing_key": routing_key,
        "event_action": "resolve" if facts["event"] == "on_success" else "trigger",
        "dedup_key": pagerduty_dedup_key(facts),
        "payload": {"summary": summary, "source": source,
                    "severity": PAGERDUTY_SEVERITY.get(facts["event"], "info"),
                    "timestamp": timestamp(facts["at_ms"]), "component": facts.get("job_name") or "Lakeflow Jobs",
                    "class": facts["event"], "custom_details": facts},
        "links": [{"href": facts["run_page_url"], "text": link_label(facts)}],
        "client": "Lakeflow Jobs", "client_url": facts["run_page_url"],
    }
