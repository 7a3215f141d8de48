"""What a job's triggers are and where each stands, in words for the dashboard: the one-line
summary of the jobs list and the job page's header, and the rows of the job page's trigger card
(each trigger's state: why it fired, or what it still waits for)."""

from runs.engine.job_completion import CompletionState
from runs.models import TriggerState

Kind = TriggerState.Kind
LABELS = {Kind.SCHEDULE: "Schedule", Kind.PERIODIC: "Periodic", Kind.FILE_ARRIVAL: "File arrival",
          Kind.TABLE_UPDATE: "Table update", Kind.CONTINUOUS: "Continuous", Kind.JOB_COMPLETION: "Job completion"}
TIMED = (Kind.SCHEDULE, Kind.PERIODIC)


def trigger_summary(states):
    """(what fires the job, paused?, next time) of a job's trigger states (position order) for the
    list and the job page; several triggers show joined."""
    parts = [_one(state) for state in states]
    if not parts:
        return {"kind": "Manual", "paused": False, "next": None}
    if len(parts) == 1:
        return parts[0]
    upcoming = [part["next"] for part in parts if part["next"]]
    return {"kind": " + ".join(part["kind"] for part in parts),
            "detail": "; ".join(part["detail"] for part in parts if part["detail"]),
            "paused": all(part["paused"] for part in parts), "next": min(upcoming) if upcoming else None,
            "error": "; ".join(f"triggers[{state.position}]: {part['error']}"
                               for state, part in zip(states, parts) if part["error"])}


def _one(state):
    config, detail = state.config, ""
    if state.kind == Kind.SCHEDULE:
        detail = f'{config.get("quartz_cron_expression")} ({config.get("timezone_id") or "UTC"})'
    elif state.kind == Kind.PERIODIC:
        periodic = config.get("periodic") or {}
        detail = f'every {periodic.get("interval")} {str(periodic.get("unit", "")).lower()}'
    elif state.kind == Kind.FILE_ARRIVAL:
        detail = (config.get("file_arrival") or {}).get("url", "")
    elif state.kind == Kind.TABLE_UPDATE:
        detail = ", ".join((config.get("table_update") or {}).get("table_names") or [])
    elif state.kind == Kind.JOB_COMPLETION:
        completion = config.get("job_completion") or {}
        jobs = ", ".join(str(job.get("job_id")) for job in completion.get("jobs") or [])
        detail = f'after job {jobs} ({completion.get("if_status") or "SUCCESS"})'
    if config.get("sql_condition"):
        detail += " if its SQL condition holds"
    return {"kind": LABELS[state.kind], "detail": detail, "paused": state.paused, "error": state.last_error,
            "next": state.next_check_at if state.kind in TIMED and not state.paused else None}


def trigger_rows(states):
    """One row per trigger for the job page's trigger card: what it is and where it stands."""
    return [{**_one(state), "position": state.position, "standing": _standing(state)} for state in states]


def _standing(state):
    """Where the trigger stands, in a few words."""
    words = []
    if state.kind == Kind.JOB_COMPLETION:
        seen = CompletionState.from_dict(state.completions)
        for job in (state.config.get("job_completion") or {}).get("jobs") or []:
            job_id = str(job.get("job_id"))
            if job_id in seen.pending:
                words.append(f"job {job_id}: run {seen.pending[job_id].run_id} counted")
            elif job_id in seen.not_matching:
                words.append(f"job {job_id}: waiting (its last run ended "
                             f"{seen.not_matching[job_id].result_state or seen.not_matching[job_id].termination_code})")
            else:
                words.append(f"job {job_id}: waiting")
    elif state.kind == Kind.FILE_ARRIVAL:
        words.append(f"{len(state.snapshot or {})} file(s) seen")
    elif state.kind == Kind.TABLE_UPDATE and state.updated_tables:
        words.append(f"updated: {', '.join(sorted(state.updated_tables))}")
    elif state.kind == Kind.CONTINUOUS and state.failures:
        words.append(f"{state.failures} failed run(s) in a row")
    if state.pending_fire:
        words.append("a firing waits for its SQL condition")
    elif state.condition_state and "latest_condition_evaluation_satisfied" in state.condition_state:
        met = state.condition_state["latest_condition_evaluation_satisfied"]
        words.append(f"SQL condition {'met' if met else 'not met'} when last evaluated")
    return "; ".join(words)
