"""What each channel's message says, from a notification's facts (notifications/reactions.py)."""

WORDS = {"on_start": "started", "on_success": "succeeded", "on_failure": "failed",
         "on_duration_warning_threshold_exceeded": "is running longer than expected",
         "on_streaming_backlog_exceeded": "has a streaming backlog above its limit"}


def headline(facts):
    subject = f"task {facts['task_key']} of job {facts['job_name']}" if facts.get("task_key") else f"job {facts['job_name']}"
    word = WORDS.get(facts["event"], facts["event"])
    if facts["event"] == "on_failure" and facts.get("result_state") not in (None, "FAILED"):
        word = f"ended {facts['result_state']}"
    return f"Run {facts['run_id']} of {subject} {word}"


def email(facts):
    lines = [headline(facts), ""]
    if facts.get("message"):
        lines += [facts["message"], ""]
    lines.append(f"Run page: {facts['run_page_url']}")
    return f"[Lakeflow] {headline(facts)}", "\n".join(lines) + "\n"


def generic_webhook(facts):
    """Databricks' generic webhook JSON (event_type, workspace_id, run, job; task for task events)."""
    payload = {"event_type": facts["event_type"], "workspace_id": "0",
               "run": {"run_id": str(facts["run_id"])},
               "job": {"job_id": str(facts["job_id"]), "name": facts["job_name"]}}
    if facts.get("task_key"):
        payload["task"] = {"task_key": facts["task_key"]}
        if facts.get("task_run_id"):
            payload["run"] = {"run_id": str(facts["task_run_id"]), "parent_run_id": str(facts["run_id"])}
    return payload
